"""Documents sent by hash: Apollo's automatic persisted queries, and a trusted-documents-only mode.

- **Automatic persisted queries** (the default): a client may send only
  `extensions.persistedQuery.sha256Hash`; a hash this process has seen with its text runs that
  text, and an unknown one is answered `PersistedQueryNotFound` (code `PERSISTED_QUERY_NOT_FOUND`),
  after which Apollo Client, urql and Relay send the text with the hash once. A text sent with a
  hash must hash to it. The texts are kept per process in a bounded store (entries and
  characters), least recently used first out: another process, or an evicted hash, costs the
  client one round trip more, never an error it cannot recover from.
- **Trusted documents** (`TRUSTED_DOCUMENTS=manifest.json`): only the documents listed in the
  manifest run, named by hash or sent as their exact text; anything else is refused with
  `DOCUMENT_NOT_TRUSTED` before it is parsed. The manifest is Apollo's persisted query manifest
  (`{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body", ...}]}`) or a
  plain object of hash to text (graphql-codegen's `persisted-documents.json`); every id must be
  the SHA-256 of its text.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
DOCUMENT_NOT_TRUSTED = "DOCUMENT_NOT_TRUSTED"

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Refused:
    """Why a request's document cannot run: its message, code and HTTP status."""

    message: str
    code: str
    status: int


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load_manifest(path: str) -> dict[str, str]:
    """Hash to text, from either manifest format; refuses one whose ids are not their texts' hashes."""
    raw: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(raw, dict) and raw.get("format") == "apollo-persisted-query-manifest":
        pairs = [(op["id"], op["body"]) for op in raw.get("operations", [])]
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        raise ValueError(f"{path}: not a persisted documents manifest")
    documents: dict[str, str] = {}
    for key, text in pairs:
        if not isinstance(key, str) or not isinstance(text, str) or sha256(text) != key.lower():
            raise ValueError(f"{path}: the id {key!r} is not the SHA-256 of its document")
        documents[key.lower()] = text
    return documents


class PersistedDocuments:
    """The texts a request may name by hash (see the module's docstring)."""

    def __init__(
        self,
        trusted: dict[str, str] | None = None,
        max_entries: int = 1000,
        max_total_chars: int = 4 * 1024 * 1024,
    ) -> None:
        self.trusted = trusted
        self._trusted_texts = frozenset(trusted.values()) if trusted is not None else frozenset()
        self._seen: OrderedDict[str, str] = OrderedDict()
        self._chars = 0
        self.max_entries = max_entries
        self.max_total_chars = max_total_chars

    def __len__(self) -> int:
        return len(self._seen)

    def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | Refused | None:
        """The text to run (None: the request sent neither a text nor a hash), or why not."""
        persisted = (extensions or {}).get("persistedQuery")
        digest: str | None = None
        if persisted is not None:
            if not isinstance(persisted, dict) or persisted.get("version") != 1:
                return Refused(
                    "Only version 1 of persisted queries is supported.", PERSISTED_QUERY_NOT_SUPPORTED, 400
                )
            given = persisted.get("sha256Hash")
            if not isinstance(given, str) or not _SHA256.fullmatch(given.lower()):
                return Refused("sha256Hash must be 64 hexadecimal digits.", "BAD_USER_INPUT", 400)
            digest = given.lower()
        if self.trusted is not None:
            return self._trusted(query, digest)
        if digest is None:
            return query
        if query is None:
            text = self._seen.get(digest)
            if text is None:
                return Refused("PersistedQueryNotFound", PERSISTED_QUERY_NOT_FOUND, 200)
            self._seen.move_to_end(digest)
            return text
        if sha256(query) != digest:
            return Refused("provided sha does not match query", "BAD_USER_INPUT", 400)
        self._keep(digest, query)
        return query

    def _trusted(self, query: str | None, digest: str | None) -> str | Refused | None:
        assert self.trusted is not None
        if digest is not None:
            text = self.trusted.get(digest)
            if text is None or (query is not None and query != text):
                return Refused("This server runs only its trusted documents.", DOCUMENT_NOT_TRUSTED, 400)
            return text
        if query is None:
            return None
        if query not in self._trusted_texts:
            return Refused("This server runs only its trusted documents.", DOCUMENT_NOT_TRUSTED, 400)
        return query

    def _keep(self, digest: str, text: str) -> None:
        if digest in self._seen:
            self._seen.move_to_end(digest)
            return
        if len(text) > self.max_total_chars:
            return
        self._seen[digest] = text
        self._chars += len(text)
        while len(self._seen) > self.max_entries or self._chars > self.max_total_chars:
            _, dropped = self._seen.popitem(last=False)
            self._chars -= len(dropped)
