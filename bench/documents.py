"""Documents: upload and download throughput of a 20 MiB file through the API, against a plain file
copy on the same disk in the same run, and the server's memory while it moves one.

    python bench/documents.py [--mib 20] [--rounds 3] [--write bench/RESULTS.md]

What is measured, each the median of `--rounds`:
- baseline: `shutil.copyfile` of the file to a new file in the same folder, then `fsync` (the
  store fsyncs each object before renaming it into place, so the copy does too);
- upload: the `PUT` of the file's bytes to a signed upload URL (read from the disk as it is sent),
  until the server has hashed, sniffed, encrypted, written and fsynced them; then
  `completeDocumentUpload` (checks against values already computed while streaming; not timed);
- download: the `GET` of the signed download URL, written to a file in the same folder as it
  arrives (decrypted chunk by chunk).
The server is `python server.py serve` on a fresh SQLite file with its store in the same folder
(`STORAGE_URL=file://…`), so both sides use one disk. Its memory is the resident set of its worker
process (`/proc/PID/status` VmRSS, sampled every 2 ms in a thread), taken after a warm-up
transfer: the growth is the peak during each transfer over the RSS just before it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, free_port, machine, wait_ready

MIB = 1024 * 1024


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Sampler:
    """The peak RSS of a process while a block runs, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.002)

    def __enter__(self) -> Sampler:
        self.before = rss_kib(self.pid)
        self.peak = self.before
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kib(self.pid))

    @property
    def growth_kib(self) -> int:
        return self.peak - self.before


async def _gql(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None = None
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = (
        await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    ).json()
    assert not body.get("errors"), body
    return body["data"]


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while piece := f.read(256 * 1024):
            yield piece


async def main(args: argparse.Namespace) -> str:
    size = args.mib * MIB

    with tempfile.TemporaryDirectory(prefix="senvault-bench-docs-", dir=ROOT) as tmp:
        folder = Path(tmp)
        source = folder / "source.png"
        source.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(size - 8))
        digest = hashlib.sha256(source.read_bytes()).hexdigest()

        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite://{folder / 'bench.sqlite3'}",
            "STORAGE_URL": f"file://{folder / 'store'}",
            "STORAGE_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
            "MAX_DOCUMENT_BYTES": str(size),
            "ACCESS_LOG": "false",
            "RATE_LIMIT_PER_MINUTE": "1000000",
            "ANONYMOUS_RATE_LIMIT_PER_MINUTE": "1000000",
        }
        migrate = await asyncio.create_subprocess_exec(
            sys.executable, "server.py", "migrate", cwd=ROOT, env=env, stdout=subprocess.DEVNULL
        )
        assert await migrate.wait() == 0
        port = free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "server.py",
            "serve",
            "--port",
            str(port),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_ready(base + "/readyz", proc)
            async with httpx.AsyncClient(base_url=base, timeout=300) as http:
                pid = int((await http.get("/readyz")).json()["server"].rsplit(":", 1)[1])
                signed = await _gql(
                    http,
                    "mutation($i: SignUpInput!) { signUp(input: $i) { token } }",
                    {
                        "i": {
                            "email": "bench@example.test",
                            "password": "bench-password-123",
                            "displayName": "Bench",
                            "role": "FAMILY",
                        }
                    },
                )
                token = signed["signUp"]["token"]
                child = (
                    await _gql(
                        http,
                        'mutation { addChild(input: {displayName: "A", dateOfBirth: "2016-01-01"})'
                        " { child { id } } }",
                        {},
                        token,
                    )
                )["addChild"]["child"]["id"]
                evidence = (
                    await _gql(
                        http,
                        'mutation($c: ID!) { addEvidence(input: {childId: $c, title: "Scan",'
                        ' category: OTHER, date: "2025-01-01"}) { evidence { id } } }',
                        {"c": child},
                        token,
                    )
                )["addEvidence"]["evidence"]["id"]

                async def one_round() -> tuple[float, float, float, int, int]:
                    copy = folder / "copy.png"
                    started = time.perf_counter()
                    shutil.copyfile(source, copy)
                    with copy.open("rb+") as f:
                        os.fsync(f.fileno())
                    baseline = time.perf_counter() - started
                    copy.unlink()

                    created = (
                        await _gql(
                            http,
                            "mutation($i: CreateDocumentUploadInput!) { createDocumentUpload(input: $i)"
                            " { document { id } upload { url } userErrors { code } } }",
                            {
                                "i": {
                                    "evidenceId": evidence,
                                    "filename": "scan.png",
                                    "contentType": "image/png",
                                    "byteSize": size,
                                    "sha256": digest,
                                }
                            },
                            token,
                        )
                    )["createDocumentUpload"]
                    with Sampler(pid) as up_memory:
                        started = time.perf_counter()
                        sent = await http.put(created["upload"]["url"], content=_file_chunks(source))
                        upload = time.perf_counter() - started
                    assert sent.status_code == 200, sent.text
                    done = (
                        await _gql(
                            http,
                            "mutation($id: ID!) { completeDocumentUpload(input: {documentId: $id})"
                            " { document { status downloadUrl } } }",
                            {"id": created["document"]["id"]},
                            token,
                        )
                    )["completeDocumentUpload"]["document"]
                    assert done["status"] == "AVAILABLE", done
                    target = folder / "downloaded.png"
                    with Sampler(pid) as down_memory:
                        started = time.perf_counter()
                        async with http.stream("GET", done["downloadUrl"]) as answer:
                            with target.open("wb") as f:
                                async for piece in answer.aiter_raw(256 * 1024):
                                    f.write(piece)
                        download = time.perf_counter() - started
                    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
                    target.unlink()
                    return baseline, upload, download, up_memory.growth_kib, down_memory.growth_kib

                await one_round()  # warm-up: imports, buffers, the first SQLite pages
                rounds = [await one_round() for _ in range(args.rounds)]
                resting = rss_kib(pid)
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)

    def mibs(seconds: float) -> float:
        return float(args.mib) / seconds

    baseline = statistics.median(r[0] for r in rounds)
    upload = statistics.median(r[1] for r in rounds)
    download = statistics.median(r[2] for r in rounds)
    up_growth = max(r[3] for r in rounds)
    down_growth = max(r[4] for r in rounds)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "",
        "# Documents: upload and download throughput, and memory while streaming",
        "",
        f"Run on {now} with `python bench/documents.py --mib {args.mib} --rounds {args.rounds}`"
        " (median of the rounds after a warm-up; the server on SQLite, the store on the same disk as"
        " the copy). How each number is taken is in the docstring of [`documents.py`](documents.py).",
        "",
        *machine(("cryptography",)),
        "",
        "| what | seconds | MiB/s | time vs plain copy |",
        "| --- | ---: | ---: | ---: |",
        f"| plain copy + fsync ({args.mib} MiB) | {baseline:.3f} | {mibs(baseline):.0f} | 1.0x |",
        f"| upload through the API (PUT, encrypted, fsynced) | {upload:.3f} | {mibs(upload):.0f} |"
        f" {upload / baseline:.1f}x |",
        f"| download through the API (GET, decrypted) | {download:.3f} | {mibs(download):.0f} |"
        f" {download / baseline:.1f}x |",
        "",
        f"Server RSS growth during a {args.mib} MiB transfer (peak over the RSS just before it, worst"
        f" round): upload {up_growth / 1024:.2f} MiB, download {down_growth / 1024:.2f} MiB"
        f" (bar: under 5 MiB); RSS at rest after the rounds {resting / 1024:.1f} MiB.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--mib", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", help="append the results to this Markdown file")
    arguments = parser.parse_args()
    results = asyncio.run(main(arguments))
    print(results)
    if arguments.write:
        with open(arguments.write, "a") as out:
            out.write(results)
