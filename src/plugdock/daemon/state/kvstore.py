"""The persistent key-value store plugins reach through ``session.storage``.

Scoped by tenant and plugin id (not version, so data survives upgrades). The quota is checked and
the usage updated by one conditional UPDATE in the same transaction as the write, so concurrent
writers can never push a plugin past its limit. Every row costs its key's UTF-8 bytes, its value's
bytes and ``ROW_OVERHEAD``, so empty values still use quota; the number of keys is capped as well.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from plugdock.daemon.state.db import Database
from plugdock.daemon.state.models import StorageItem, StorageUsage
from plugdock.errors import PlugdockError

MAX_KEY = 256
ROW_OVERHEAD = 64  # bytes charged per key besides the key and the value: an empty value is not free
DEFAULT_MAX_KEYS = 100_000


class StorageError(PlugdockError):
    code = "storage_error"


class QuotaExceeded(StorageError):
    code = "storage_quota_exceeded"


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY:
        raise StorageError(f"storage key must be 1 to {MAX_KEY} characters (got {len(key)})")
    if ".." in key or "//" in key or "\\" in key:
        raise StorageError(f"storage key {key!r} may not contain '..', '//' or a backslash")


def row_cost(key: str, value_size: int) -> int:
    """Bytes of quota one row uses: its key (UTF-8), its value, and the fixed per-row overhead."""
    return len(key.encode()) + value_size + ROW_OVERHEAD


class KVStore:
    def __init__(self, db: Database, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.db = db
        self.max_keys = max_keys
        # (tenant, plugin) whose usage this process has recomputed from their rows: earlier builds
        # counted value bytes only, so each plugin's total is derived once before this build trusts it.
        self._reconciled: set[tuple[str, str]] = set()
        self._reconciled_lock = threading.Lock()

    def set(self, tenant: str, plugin: str, key: str, value: bytes, limit: int) -> None:
        """Write one value. Writers of one plugin are serialised by its usage lock (see ``_ensure_usage``), so
        the first writes of one key no longer race to insert it; should a database still let one through,
        the loser's transaction is rolled back whole and retried, finding the row (usage stays exact)."""
        check_key(key)
        self._reconcile(tenant, plugin)
        for attempt in range(5):
            try:
                self._set_once(tenant, plugin, key, value, limit)
                return
            except IntegrityError:
                if attempt == 4:
                    raise StorageError(f"could not write {key!r}: other writers kept inserting it first") from None

    def _set_once(self, tenant: str, plugin: str, key: str, value: bytes, limit: int) -> None:
        with self.db.session() as s:
            self._ensure_usage(s, tenant, plugin)
            item = s.execute(select(StorageItem).where(
                StorageItem.tenant_id == tenant, StorageItem.plugin_id == plugin, StorageItem.key == key,
            ).with_for_update()).scalar_one_or_none()
            if item is None:
                self._check_key_count(s, tenant, plugin, key)
            delta = row_cost(key, len(value)) - (row_cost(key, item.size) if item else 0)
            where = [StorageUsage.tenant_id == tenant, StorageUsage.plugin_id == plugin]
            if delta > 0:
                where.append(StorageUsage.used + delta <= limit)
            updated = s.execute(update(StorageUsage).where(*where).values(used=StorageUsage.used + delta))
            if updated.rowcount == 0:  # type: ignore[attr-defined]
                used = self._stored_usage(s, tenant, plugin)
                raise QuotaExceeded(
                    f"allocated size is greater than max storage size: writing {len(value)} bytes to {key!r} would "
                    f"use {used + delta} of the {limit} bytes allowed for {plugin} (each key counts its UTF-8 "
                    f"length, its value and {ROW_OVERHEAD} bytes of overhead; {used} in use)"
                )
            if item is None:
                s.add(StorageItem(tenant_id=tenant, plugin_id=plugin, key=key, value=value, size=len(value)))
            else:
                item.value, item.size = value, len(value)

    def _check_key_count(self, s: Any, tenant: str, plugin: str, key: str) -> None:
        """Refuse a new key past ``max_keys``; called under the usage lock, so the count cannot move meanwhile.

        Every row costs at least ``ROW_OVERHEAD + 1`` bytes, so a plugin using fewer than
        ``max_keys * (ROW_OVERHEAD + 1)`` bytes cannot hold ``max_keys`` keys: only then are they counted."""
        if self._stored_usage(s, tenant, plugin) // (ROW_OVERHEAD + 1) < self.max_keys:
            return
        count = s.execute(select(func.count()).select_from(StorageItem).where(
            StorageItem.tenant_id == tenant, StorageItem.plugin_id == plugin)).scalar_one()
        if count >= self.max_keys:
            raise QuotaExceeded(
                f"too many storage keys: adding {key!r} would make {count + 1} keys for {plugin}, over the limit of "
                f"{self.max_keys} (storage_max_keys, PLUGDOCK_STORAGE_MAX_KEYS)"
            )

    def get(self, tenant: str, plugin: str, key: str) -> bytes:
        check_key(key)
        with self.db.session() as s:
            value = s.execute(select(StorageItem.value).where(
                StorageItem.tenant_id == tenant, StorageItem.plugin_id == plugin, StorageItem.key == key,
            )).scalar_one_or_none()
        if value is None:
            raise StorageError("load data failed, please check if the key is correct or you have not set it")
        return bytes(value)

    def delete(self, tenant: str, plugin: str, key: str) -> int:
        check_key(key)
        self._reconcile(tenant, plugin)
        with self.db.session() as s:
            self._ensure_usage(s, tenant, plugin)  # the write lock before the read, as in set
            item = s.execute(select(StorageItem).where(
                StorageItem.tenant_id == tenant, StorageItem.plugin_id == plugin, StorageItem.key == key,
            ).with_for_update()).scalar_one_or_none()
            if item is None:
                return 0
            s.execute(update(StorageUsage).where(StorageUsage.tenant_id == tenant, StorageUsage.plugin_id == plugin)
                      .values(used=StorageUsage.used - row_cost(item.key, item.size)))
            s.delete(item)
            return 1

    def exist(self, tenant: str, plugin: str, key: str) -> bool:
        check_key(key)
        with self.db.session() as s:
            return s.execute(select(StorageItem.key).where(
                StorageItem.tenant_id == tenant, StorageItem.plugin_id == plugin, StorageItem.key == key,
            )).scalar_one_or_none() is not None

    def used(self, tenant: str, plugin: str) -> int:
        """Bytes of quota in use (keys, values and per-row overhead)."""
        self._reconcile(tenant, plugin)
        with self.db.session() as s:
            return self._stored_usage(s, tenant, plugin)

    def _reconcile(self, tenant: str, plugin: str) -> None:
        """Recompute a plugin's usage from its rows, once per plugin in this process, under its usage lock.

        Earlier builds kept value bytes only in the usage row; deriving the total again (instead of a
        migration) also repairs any drift. It commits before the caller's own transaction, so a write
        refused for its quota cannot roll the recomputed total back."""
        scope = (tenant, plugin)
        if scope in self._reconciled:
            return
        with self.db.session() as s:
            self._ensure_usage(s, tenant, plugin)
            rows = s.execute(select(StorageItem.key, StorageItem.size).where(
                StorageItem.tenant_id == tenant, StorageItem.plugin_id == plugin))
            total = sum(row_cost(row_key, size) for row_key, size in rows)
            s.execute(update(StorageUsage).where(StorageUsage.tenant_id == tenant, StorageUsage.plugin_id == plugin)
                      .values(used=total))
        with self._reconciled_lock:
            self._reconciled.add(scope)

    @staticmethod
    def _stored_usage(s: Any, tenant: str, plugin: str) -> int:
        used = s.execute(select(StorageUsage.used).where(StorageUsage.tenant_id == tenant,
                                                         StorageUsage.plugin_id == plugin)).scalar_one_or_none()
        return int(used or 0)

    @staticmethod
    def _ensure_usage(s: object, tenant: str, plugin: str) -> None:
        """Make sure the plugin's usage row exists and hold its lock before anything else is read.

        A write comes first: on SQLite it takes the database's write lock (pysqlite begins a transaction
        only at the first write, so a read before it could be stale by the time we write); on PostgreSQL
        it locks this plugin's usage row, always before any item row, so writers never deadlock."""
        session: Any = s  # a sqlalchemy Session

        def lock() -> bool:
            touched = session.execute(update(StorageUsage).where(
                StorageUsage.tenant_id == tenant, StorageUsage.plugin_id == plugin).values(used=StorageUsage.used))
            return bool(touched.rowcount)

        if lock():
            return  # the usual case: no insert attempted
        try:
            with session.begin_nested():
                session.add(StorageUsage(tenant_id=tenant, plugin_id=plugin, used=0))
        except IntegrityError:
            lock()  # another writer created it (and has committed): take the lock now
