"""Loading rows by id: `resolvers.access.core.fetch_each` against the tortoise query it replaced.

    .venv/bin/python bench/by_id.py [--postgres postgres://postgres@127.0.0.1:5432/postgres]
                                    [--queries 2000] [--write bench/RESULTS.md]

Every Node, every row a live event names and every relation checked by the access module is loaded
by `fetch_each`: one statement for the ids asked for. Before, it awaited
`Model.filter(id__in=ids).select_related(*related)`, and tortoise built that statement anew each
time; now the statement tortoise built is kept per model, join and power of two of ids. Both run
here in one process, one after the other, on one fresh PostgreSQL database: CPU microseconds per
query (this process's, so the database's own work is not in it), for 1, 5 and 50 notifications,
alone and with their user joined. Run by hand, never by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from tortoise import Tortoise

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import append_results, fresh_database
from models.accounts import Role
from models.notifications import Notification, NotificationKind
from resolvers import events, notifications
from resolvers.access import core
from resolvers.broadcast import Hub
from resolvers.clock import Clock
from resolvers.services import Services
from server import tortoise_config
from tests.factories import account_in_database, db_id


class _NoApp:
    app = None


async def _as_before(ids: list[int], related: tuple[str, ...]) -> list[Any]:
    query = Notification.filter(id__in=sorted(set(ids)))
    return list(await (query.select_related(*related) if related else query))


async def _now(ids: list[int], related: tuple[str, ...]) -> list[Any]:
    return await core.fetch_each(Notification, [(None, i) for i in ids], lambda _v, _r: True, *related)


async def _cpu_us(load: Callable[[], Awaitable[object]], queries: int) -> float:
    for _ in range(max(50, queries // 10)):
        await load()
    started = time.process_time()
    for _ in range(queries):
        await load()
    return (time.process_time() - started) / queries * 1e6


async def run(args: argparse.Namespace) -> list[str]:
    rows = [
        "| notifications by id | tortoise query, CPU µs | `fetch_each`, CPU µs | ratio |",
        "|---|---:|---:|---:|",
    ]
    print("\n".join(rows), flush=True)
    async with fresh_database(args.postgres) as url:
        await Tortoise.init(config=tortoise_config(url))
        await Tortoise.generate_schemas()
        hub = Hub("memory://")
        await hub.connect()
        try:
            account, _ = await account_in_database(_NoApp(), Role.FAMILY)  # type: ignore[arg-type]
            async with events.unit_of_work(Services(clock=Clock(), hub=hub)) as outbox:
                for n in range(50):
                    await notifications.notify(
                        outbox, db_id(account.user_id), NotificationKind.NEW_SIGN_IN, f"Row {n}"
                    )
            ids = [n.id for n in await Notification.all().order_by("id")]
            for count in (1, 5, 50):
                for related in ((), ("user",)):
                    wanted = ids[:count]
                    before = await _cpu_us(partial(_as_before, wanted, related), args.queries)
                    now = await _cpu_us(partial(_now, wanted, related), args.queries)
                    what = f"{count}" + (", user joined" if related else "")
                    rows.append(f"| {what} | {before:.0f} | {now:.0f} | {now / before:.2f}× |")
                    print(rows[-1], flush=True)
        finally:
            await hub.disconnect()
            await Tortoise.close_connections()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    rows = asyncio.run(run(args))
    if args.write:
        append_results(args.write, "Rows by id", ("asyncpg",), rows)


if __name__ == "__main__":
    main()
