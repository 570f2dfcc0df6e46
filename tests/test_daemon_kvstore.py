"""The plugin key-value store on SQLite and on PostgreSQL: scoping, quota (atomic), key rules."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from plugdock.daemon.db import Database
from plugdock.daemon.kvstore import KVStore, QuotaExceeded, StorageError

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KVStore]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'kv.db'}")
        yield KVStore(db)
        db.close()
        return
    name = f"plugdock_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(f"postgresql://postgres@127.0.0.1:5432/{name}")
    try:
        yield KVStore(db)
    finally:
        db.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_set_get_exist_delete(store: KVStore) -> None:
    store.set("t1", "a/p", "k", b"value", limit=1024)
    assert store.get("t1", "a/p", "k") == b"value"
    assert store.exist("t1", "a/p", "k") and not store.exist("t1", "a/p", "other")
    store.set("t1", "a/p", "k", b"v2", limit=1024)
    assert store.get("t1", "a/p", "k") == b"v2" and store.used("t1", "a/p") == 2
    assert store.delete("t1", "a/p", "k") == 1 and store.delete("t1", "a/p", "k") == 0
    assert store.used("t1", "a/p") == 0
    with pytest.raises(StorageError, match="load data failed"):
        store.get("t1", "a/p", "k")


def test_scoped_by_tenant_and_plugin(store: KVStore) -> None:
    store.set("t1", "a/p", "k", b"one", limit=1024)
    store.set("t2", "a/p", "k", b"two", limit=1024)
    store.set("t1", "a/q", "k", b"three", limit=1024)
    assert [store.get(t, p, "k") for t, p in (("t1", "a/p"), ("t2", "a/p"), ("t1", "a/q"))] == [b"one", b"two",
                                                                                                 b"three"]


def test_quota_is_enforced_and_counts_overwrites(store: KVStore) -> None:
    store.set("t", "a/p", "a", b"x" * 600, limit=1000)
    with pytest.raises(QuotaExceeded, match="would use 1100 of the 1000 bytes"):
        store.set("t", "a/p", "b", b"x" * 500, limit=1000)
    store.set("t", "a/p", "a", b"x" * 100, limit=1000)  # shrinking frees space
    store.set("t", "a/p", "b", b"x" * 800, limit=1000)
    assert store.used("t", "a/p") == 900


def test_quota_holds_under_concurrent_writers(store: KVStore) -> None:
    errors: list[Exception] = []

    def writer(n: int) -> None:
        try:
            store.set("t", "a/p", f"k{n}", b"x" * 100, limit=1000)
        except QuotaExceeded:
            pass
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = sum(1 for n in range(30) if store.exist("t", "a/p", f"k{n}"))
    assert store.used("t", "a/p") == stored * 100 <= 1000
    assert not [e for e in errors if "locked" not in str(e) and "could not serialize" not in str(e)]


def test_first_writes_of_one_key_racing_all_succeed(store: KVStore) -> None:
    """Found by the soak: concurrent first writes of one key raced to insert it and one failed."""
    errors: list[Exception] = []
    start = threading.Barrier(12)

    def writer(n: int) -> None:
        start.wait()
        try:
            store.set("t", "a/p", "same", str(n).encode() * 10, limit=10_000)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    value = store.get("t", "a/p", "same")
    assert store.used("t", "a/p") == len(value)


@pytest.mark.parametrize("key", ["", "a/../b", "a//b", "a\\b", "k" * 257])
def test_bad_keys(store: KVStore, key: str) -> None:
    with pytest.raises(StorageError):
        store.set("t", "a/p", key, b"x", limit=1000)
