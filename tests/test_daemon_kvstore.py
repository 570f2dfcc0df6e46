"""The plugin key-value store on SQLite and on PostgreSQL: scoping, quota (atomic; keys, values and a per-row
overhead counted), key cap, key rules, and usage kept by earlier builds (value bytes only) recomputed."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from plugdock.daemon.settings import load_settings
from plugdock.daemon.state.db import Database
from plugdock.daemon.state.kvstore import ROW_OVERHEAD, KVStore, QuotaExceeded, StorageError, row_cost
from plugdock.daemon.state.models import StorageItem, StorageUsage

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
    assert store.get("t1", "a/p", "k") == b"v2" and store.used("t1", "a/p") == 1 + 2 + ROW_OVERHEAD
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
    store.set("t", "a/p", "a", b"x" * 600, limit=1000)  # 665 with its key and overhead
    with pytest.raises(QuotaExceeded, match="would use 1230 of the 1000 bytes"):
        store.set("t", "a/p", "b", b"x" * 500, limit=1000)
    store.set("t", "a/p", "a", b"x" * 100, limit=1000)  # shrinking frees space
    store.set("t", "a/p", "b", b"x" * 700, limit=1000)
    assert store.used("t", "a/p") == 165 + 765


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
    stored = [f"k{n}" for n in range(30) if store.exist("t", "a/p", f"k{n}")]
    assert stored and store.used("t", "a/p") == sum(row_cost(key, 100) for key in stored) <= 1000
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
    assert store.used("t", "a/p") == row_cost("same", len(value))


BAD_KEYS = ["", "a/../b", "a//b", "a\\b", "k" * 257]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys(store: KVStore, key: str) -> None:
    with pytest.raises(StorageError, match="storage key"):
        store.set("t", "a/p", key, b"x", limit=1000)


@pytest.mark.parametrize("operation", ["get", "delete", "exist"])
@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused_by_every_operation(store: KVStore, operation: str, key: str) -> None:
    with pytest.raises(StorageError, match="storage key"):
        getattr(store, operation)("t", "a/p", key)


# -- what a row costs: key bytes + value bytes + ROW_OVERHEAD, at the exact limits ---------------

def test_a_write_landing_exactly_on_the_quota_succeeds_and_one_byte_more_fails(store: KVStore) -> None:
    limit = 1000
    fits = limit - 1 - ROW_OVERHEAD  # key "k" is one byte
    store.set("t", "a/p", "k", b"x" * fits, limit=limit)
    assert store.used("t", "a/p") == limit
    store.delete("t", "a/p", "k")
    with pytest.raises(QuotaExceeded, match=f"writing {fits + 1} bytes to 'k' would use {limit + 1} of the {limit} "
                                            f"bytes allowed for a/p .*{ROW_OVERHEAD} bytes of overhead; 0 in use"):
        store.set("t", "a/p", "k", b"x" * (fits + 1), limit=limit)
    assert store.used("t", "a/p") == 0 and not store.exist("t", "a/p", "k")


def test_key_bytes_count_in_utf8(store: KVStore) -> None:
    store.set("t", "a/p", "café", b"", limit=1000)  # 5 bytes in UTF-8, 4 characters
    assert store.used("t", "a/p") == 5 + ROW_OVERHEAD
    with pytest.raises(QuotaExceeded, match=f"would use {5 + ROW_OVERHEAD + 5 + ROW_OVERHEAD} of the 137 bytes"):
        store.set("t", "a/p", "cafè", b"", limit=2 * (5 + ROW_OVERHEAD) - 1)


def test_empty_values_consume_quota(store: KVStore) -> None:
    """Found by the review: 5,000 keys with empty values used 0 bytes of quota."""
    limit = 3 * (2 + ROW_OVERHEAD)
    for n in range(3):
        store.set("t", "a/p", f"k{n}", b"", limit=limit)
    assert store.used("t", "a/p") == limit
    with pytest.raises(QuotaExceeded, match=f"would use {limit + 2 + ROW_OVERHEAD} of the {limit} bytes"):
        store.set("t", "a/p", "k3", b"", limit=limit)


def test_overwriting_with_a_value_of_the_same_size_at_the_limit_succeeds(store: KVStore) -> None:
    limit = 1 + 100 + ROW_OVERHEAD
    store.set("t", "a/p", "k", b"a" * 100, limit=limit)
    store.set("t", "a/p", "k", b"b" * 100, limit=limit)
    assert store.get("t", "a/p", "k") == b"b" * 100 and store.used("t", "a/p") == limit
    with pytest.raises(QuotaExceeded, match=f"would use {limit + 1} of the {limit} bytes"):
        store.set("t", "a/p", "k", b"c" * 101, limit=limit)
    store.set("t", "a/p", "k", b"d" * 99, limit=limit)  # shrinking at the limit is always allowed
    assert store.used("t", "a/p") == limit - 1


def test_delete_frees_the_key_bytes_and_the_overhead(store: KVStore) -> None:
    store.set("t", "a/p", "keep", b"12345", limit=10_000)
    before = store.used("t", "a/p")
    store.set("t", "a/p", "temporary", b"", limit=10_000)
    assert store.used("t", "a/p") == before + len("temporary") + ROW_OVERHEAD
    assert store.delete("t", "a/p", "temporary") == 1
    assert store.used("t", "a/p") == before == row_cost("keep", 5)


@pytest.mark.parametrize("value_size", [0, 100])  # small and large usage: the key count is taken either way
def test_the_nth_key_succeeds_and_the_next_fails(store: KVStore, value_size: int) -> None:
    capped = KVStore(store.db, max_keys=3)
    value = b"v" * value_size
    for n in range(3):
        capped.set("t", "a/p", f"k{n}", value, limit=100_000)
    with pytest.raises(QuotaExceeded, match=r"adding 'k3' would make 4 keys for a/p, over the limit of 3 "
                                            r"\(storage_max_keys, PLUGDOCK_STORAGE_MAX_KEYS\)"):
        capped.set("t", "a/p", "k3", value, limit=100_000)
    assert not capped.exist("t", "a/p", "k3")
    capped.set("t", "a/p", "k2", b"new value", limit=100_000)  # overwriting at the cap adds no key
    capped.set("t", "other-tenant", "k3", value, limit=100_000)  # the cap is per tenant and plugin
    capped.delete("t", "a/p", "k0")
    capped.set("t", "a/p", "k3", value, limit=100_000)  # a deleted key makes room
    assert capped.used("t", "a/p") == row_cost("k1", value_size) + row_cost("k2", 9) + row_cost("k3", value_size)


def test_usage_kept_by_earlier_builds_is_recomputed(store: KVStore) -> None:
    """Earlier builds counted value bytes only; the first use of a plugin in a process derives its usage again."""
    with store.db.session() as s:
        s.add_all([StorageItem(tenant_id="t", plugin_id="a/p", key=f"old{n}", value=b"", size=0) for n in range(5)]
                  + [StorageItem(tenant_id="t", plugin_id="a/p", key="big", value=b"x" * 10, size=10),
                     StorageUsage(tenant_id="t", plugin_id="a/p", used=10)])
    legacy = 5 * row_cost("old0", 0) + row_cost("big", 10)
    fresh = KVStore(store.db)
    limit = legacy + row_cost("new", 0)
    with pytest.raises(QuotaExceeded, match=f"would use {limit} of the {limit - 1} bytes"):
        fresh.set("t", "a/p", "new", b"", limit=limit - 1)  # under quota by the old count, over by the new
    assert fresh.used("t", "a/p") == legacy  # the recomputed total survived the refused write
    fresh.set("t", "a/p", "new", b"", limit=limit)
    assert fresh.delete("t", "a/p", "big") == 1
    assert fresh.used("t", "a/p") == limit - row_cost("big", 10)


def test_the_key_cap_is_a_setting() -> None:
    settings = load_settings(environ={"PLUGDOCK_STORAGE_MAX_KEYS": "250", "PLUGDOCK_HOME": "/nonexistent-unused",
                                      "SERVER_KEY": "k"})
    assert (settings.storage_max_keys, settings.sources["storage_max_keys"]) == (250, "env PLUGDOCK_STORAGE_MAX_KEYS")
    assert load_settings(environ={"PLUGDOCK_HOME": "/nonexistent-unused", "SERVER_KEY": "k"}).storage_max_keys \
        == 100_000


# -- key length and key rules at their edges, named exactly ------------------------------------------

@pytest.mark.parametrize("key", ["k", "k" * 256, "é" * 256, "a/b", "a.b.c", "./a", "/a/"])
def test_keys_at_the_edges_work_with_every_operation(store: KVStore, key: str) -> None:
    """1 and 256 characters (256 of them two UTF-8 bytes each), and single dots or slashes, are all keys."""
    store.set("t", "a/p", key, b"v", limit=10_000)
    assert store.get("t", "a/p", key) == b"v" and store.exist("t", "a/p", key)
    assert store.used("t", "a/p") == len(key.encode()) + 1 + ROW_OVERHEAD
    assert store.delete("t", "a/p", key) == 1 and store.used("t", "a/p") == 0


@pytest.mark.parametrize("operation", ["set", "get", "delete", "exist"])
def test_key_rule_messages(store: KVStore, operation: str) -> None:
    args = {"set": ("t", "a/p", "", b"x", 100)}.get(operation, ("t", "a/p", ""))

    def call(key: str) -> None:
        getattr(store, operation)(*args[:2], key, *args[3:])

    for key, message in [("", "storage key must be 1 to 256 characters (got 0)"),
                         ("k" * 257, "storage key must be 1 to 256 characters (got 257)"),
                         ("a/../b", "storage key 'a/../b' may not contain '..', '//' or a backslash"),
                         ("a//b", "storage key 'a//b' may not contain '..', '//' or a backslash"),
                         ("a\\b", "storage key 'a\\\\b' may not contain '..', '//' or a backslash")]:
        with pytest.raises(StorageError) as refused:
            call(key)
        assert str(refused.value) == message


def test_a_one_byte_growth_past_the_quota_is_refused(store: KVStore) -> None:
    """The quota check runs for any growth (``delta > 0``), a single byte included."""
    limit = row_cost("k", 10)
    store.set("t", "a/p", "k", b"x" * 10, limit=limit)
    with pytest.raises(QuotaExceeded, match=f"would use {limit + 1} of the {limit} bytes"):
        store.set("t", "a/p", "k", b"x" * 11, limit=limit)
    assert store.get("t", "a/p", "k") == b"x" * 10 and store.used("t", "a/p") == limit


def test_deletes_racing_writes_keep_usage_exact(store: KVStore) -> None:
    """Deletes take the usage lock before reading the row, as writes do: the total stays the sum of the rows."""
    errors: list[Exception] = []
    start = threading.Barrier(16)

    def worker(n: int) -> None:
        start.wait()
        try:
            for round_ in range(5):
                key = f"k{(n + round_) % 4}"
                if n % 2:
                    store.delete("t", "a/p", key)
                else:
                    store.set("t", "a/p", key, b"x" * (n + round_), limit=100_000)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [e for e in errors if "locked" not in str(e) and "could not serialize" not in str(e)] == []
    with store.db.session() as s:
        rows = s.query(StorageItem.key, StorageItem.size).filter_by(tenant_id="t", plugin_id="a/p").all()
        used = s.query(StorageUsage.used).filter_by(tenant_id="t", plugin_id="a/p").scalar()
    assert used == sum(row_cost(key, size) for key, size in rows)


# -- every operation stays in its own tenant, plugin and key ----------------------------------------------

SCOPES = [("t1", "a/p"), ("t2", "a/p"), ("t1", "a/q")]


def test_every_operation_stays_in_its_tenant_plugin_and_key(store: KVStore) -> None:
    for n, (tenant, plugin) in enumerate(SCOPES):
        store.set(tenant, plugin, "k", b"x" * (n + 1), limit=1000)
        store.set(tenant, plugin, f"only{n}", b"v" * n, limit=1000)
    assert [store.get(t, p, "k") for t, p in SCOPES] == [b"x", b"xx", b"xxx"]
    assert store.get("t2", "a/p", "only1") == b"v"
    assert [store.exist(t, p, "only0") for t, p in SCOPES] == [True, False, False]
    assert [store.used(t, p) for t, p in SCOPES] == [row_cost("k", n + 1) + row_cost(f"only{n}", n) for n in range(3)]
    assert store.delete("t2", "a/p", "only0") == 0 and store.delete("t1", "a/q", "only0") == 0
    assert store.delete("t1", "a/p", "k") == 1
    assert [store.exist(t, p, "k") for t, p in SCOPES] == [False, True, True]
    assert [store.used(t, p) for t, p in SCOPES] == [
        row_cost("only0", 0), row_cost("k", 2) + row_cost("only1", 1), row_cost("k", 3) + row_cost("only2", 2)]
    with pytest.raises(StorageError) as refused:
        store.get("t1", "a/p", "k")
    assert str(refused.value) == "load data failed, please check if the key is correct or you have not set it"


def test_recomputing_old_usage_touches_only_its_own_plugin(store: KVStore) -> None:
    with store.db.session() as s:
        for tenant, plugin in SCOPES:
            s.add_all([StorageItem(tenant_id=tenant, plugin_id=plugin, key="old", value=b"12", size=2),
                       StorageUsage(tenant_id=tenant, plugin_id=plugin, used=2)])
    fresh = KVStore(store.db)
    assert fresh.used("t1", "a/p") == row_cost("old", 2)
    with store.db.session() as s:
        raw = {(u.tenant_id, u.plugin_id): u.used for u in s.query(StorageUsage).all()}
    assert raw == {("t1", "a/p"): row_cost("old", 2), ("t2", "a/p"): 2, ("t1", "a/q"): 2}  # the others not yet
    assert [fresh.used(t, p) for t, p in SCOPES] == [row_cost("old", 2)] * 3


def test_the_key_cap_counts_one_tenant_only(store: KVStore) -> None:
    capped = KVStore(store.db, max_keys=3)
    for n in range(3):
        capped.set("t1", "a/p", f"k{n}", b"v" * 100, limit=100_000)
    for n in range(3):
        capped.set("t2", "a/p", f"k{n}", b"v" * 100, limit=100_000)  # the other tenant has its own three
    with pytest.raises(QuotaExceeded, match="would make 4 keys"):
        capped.set("t2", "a/p", "k3", b"", limit=100_000)


def test_the_key_cap_holds_for_the_smallest_rows(store: KVStore) -> None:
    """Three 1-byte keys with empty values use exactly 3 x 65 bytes: the fewest that can hold the cap."""
    capped = KVStore(store.db, max_keys=3)
    for key in "abc":
        capped.set("t", "a/p", key, b"", limit=100_000)
    assert capped.used("t", "a/p") == 3 * (1 + ROW_OVERHEAD)
    with pytest.raises(QuotaExceeded, match="adding 'd' would make 4 keys"):
        capped.set("t", "a/p", "d", b"", limit=100_000)


def test_writes_that_do_not_grow_pass_even_over_a_lowered_quota(store: KVStore) -> None:
    store.set("t", "a/p", "k", b"x" * 500, limit=1000)
    store.set("t", "a/p", "k", b"y" * 500, limit=100)  # the same size: no growth, no check
    store.set("t", "a/p", "k", b"z" * 400, limit=100)  # smaller
    assert store.get("t", "a/p", "k") == b"z" * 400
    with pytest.raises(QuotaExceeded):
        store.set("t", "a/p", "k", b"z" * 401, limit=100)


def test_a_write_losing_the_insert_race_is_retried_five_times(store: KVStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import IntegrityError

    attempts: list[int] = []
    real = store._set_once

    def losing(*args: object) -> None:
        attempts.append(1)
        if len(attempts) < 5 or fail_always:
            raise IntegrityError("INSERT", {}, Exception("duplicate key"))
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "_set_once", losing)
    fail_always = False
    store.set("t", "a/p", "k", b"v", limit=1000)  # the fifth try wins
    assert len(attempts) == 5 and store.get("t", "a/p", "k") == b"v"
    attempts.clear()
    fail_always = True
    with pytest.raises(StorageError) as refused:
        store.set("t", "a/p", "k", b"w", limit=1000)
    assert str(refused.value) == "could not write 'k': other writers kept inserting it first"
    assert len(attempts) == 5
