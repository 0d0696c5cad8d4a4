"""The `base` chain's key-value database on disk: a snapshot plus an append-only log of writes.

py-evm keeps every piece of chain state (the state trie, blocks, receipts, the canonical head) in
one key-value database. ``RecordingDB`` is py-evm's ``MemoryDB`` that also remembers which keys
were written or deleted since the last ``flush``; ``ChainStore`` appends those changes to
``chain.log`` as one checksummed record per flush (fsync'd), and at start reads ``chain.snap``
(the whole database at the last compaction) and replays the log over it. A torn last record (a
crash in the middle of a write) fails its checksum and is dropped: the chain is then exactly as at
the previous flush. Replaying is idempotent, so a crash between writing a new snapshot and
truncating the log loses nothing.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path

from eth.db.backends.memory import MemoryDB

_HEADER = struct.Struct(">I32s")  # payload length, sha256(payload)
_ENTRY = struct.Struct(">BII")  # op (1 = set, 0 = delete), key length, value length


class RecordingDB(MemoryDB):
    """A MemoryDB that records the keys changed since the last ``take_changes``."""

    def __init__(self, kv_store: dict[bytes, bytes] | None = None) -> None:
        super().__init__(kv_store if kv_store is not None else {})
        self._changes: dict[bytes, bytes | None] = {}

    def __setitem__(self, key: bytes, value: bytes) -> None:
        super().__setitem__(key, value)
        self._changes[key] = value

    def __delitem__(self, key: bytes) -> None:
        super().__delitem__(key)
        self._changes[key] = None

    def take_changes(self) -> dict[bytes, bytes | None]:
        changes, self._changes = self._changes, {}
        return changes

    def mark_all_changed(self) -> None:
        self._changes = dict(self.kv_store)


def _encode(changes: dict[bytes, bytes | None]) -> bytes:
    parts = []
    for key, value in changes.items():
        if value is None:
            parts.append(_ENTRY.pack(0, len(key), 0) + key)
        else:
            parts.append(_ENTRY.pack(1, len(key), len(value)) + key + value)
    return b"".join(parts)


def _apply(payload: bytes, kv: dict[bytes, bytes]) -> None:
    at = 0
    while at < len(payload):
        op, key_len, value_len = _ENTRY.unpack_from(payload, at)
        at += _ENTRY.size
        key = payload[at : at + key_len]
        at += key_len
        if op:
            kv[key] = payload[at : at + value_len]
            at += value_len
        else:
            kv.pop(key, None)


def _records(data: bytes) -> Iterator[bytes]:
    """Each complete, intact record's payload; stops at the first torn or corrupt one."""
    at = 0
    while at + _HEADER.size <= len(data):
        length, digest = _HEADER.unpack_from(data, at)
        payload = data[at + _HEADER.size : at + _HEADER.size + length]
        if len(payload) != length or hashlib.sha256(payload).digest() != digest:
            return
        yield payload
        at += _HEADER.size + length


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ChainStore:
    """``<dir>/chain.snap`` + ``<dir>/chain.log``: load at start, append on every flush."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.snapshot = directory / "chain.snap"
        self.log = directory / "chain.log"

    def exists(self) -> bool:
        return self.snapshot.exists() or self.log.exists()

    def load(self) -> RecordingDB:
        """The database as at the last flush; compacts the log into a new snapshot."""
        kv: dict[bytes, bytes] = {}
        if self.snapshot.exists():
            for payload in _records(self.snapshot.read_bytes()):
                _apply(payload, kv)
        replayed = False
        if self.log.exists():
            for payload in _records(self.log.read_bytes()):
                _apply(payload, kv)
                replayed = True
        if replayed or self.log.exists():
            self._compact(kv)
        return RecordingDB(kv)

    def create(self, db: RecordingDB) -> None:
        """A fresh store holding everything in ``db``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log.unlink(missing_ok=True)
        db.take_changes()
        self._compact(db.kv_store)

    def flush(self, db: RecordingDB) -> None:
        """Append what changed in ``db`` since the last flush (nothing if nothing did)."""
        changes = db.take_changes()
        if not changes:
            return
        payload = _encode(changes)
        with open(self.log, "ab") as f:
            f.write(_HEADER.pack(len(payload), hashlib.sha256(payload).digest()) + payload)
            f.flush()
            os.fsync(f.fileno())

    def wipe(self) -> None:
        self.snapshot.unlink(missing_ok=True)
        self.log.unlink(missing_ok=True)

    def _compact(self, kv: dict[bytes, bytes]) -> None:
        payload = _encode(dict(kv))
        _write_atomically(self.snapshot, _HEADER.pack(len(payload), hashlib.sha256(payload).digest()) + payload)
        self.log.unlink(missing_ok=True)
