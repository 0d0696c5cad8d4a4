"""The chain's key-value store on disk: snapshot + append-only log, torn records dropped."""

from __future__ import annotations

from pathlib import Path

from infra.world.evm_store import ChainStore, RecordingDB


def test_flush_replay_and_compaction(tmp_path: Path) -> None:
    store = ChainStore(tmp_path)
    db = RecordingDB({b"a": b"1"})
    store.create(db)
    db[b"b"] = b"2"
    store.flush(db)
    db[b"a"] = b"3"
    del db[b"b"]
    db[b"c"] = b""
    store.flush(db)
    store.flush(db)  # nothing changed: nothing written
    assert store.load().kv_store == {b"a": b"3", b"c": b""}
    assert not store.log.exists()  # compacted into the snapshot
    assert store.load().kv_store == {b"a": b"3", b"c": b""}


def test_a_torn_record_is_dropped(tmp_path: Path) -> None:
    store = ChainStore(tmp_path)
    db = RecordingDB()
    store.create(db)
    db[b"k"] = b"kept"
    store.flush(db)
    size = store.log.stat().st_size
    db[b"k"] = b"lost"
    store.flush(db)
    with open(store.log, "r+b") as f:
        f.truncate(store.log.stat().st_size - 1)
    assert store.load().kv_store == {b"k": b"kept"}
    assert size > 0
