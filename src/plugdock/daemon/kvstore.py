"""The persistent key-value store plugins reach through ``session.storage``.

Scoped by tenant and plugin id (not version, so data survives upgrades). The quota is checked and
the usage updated by one conditional UPDATE in the same transaction as the write, so concurrent
writers can never push a plugin past its limit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from plugdock.daemon.db import Database
from plugdock.daemon.models import StorageItem, StorageUsage
from plugdock.errors import PlugdockError

MAX_KEY = 256


class StorageError(PlugdockError):
    code = "storage_error"


class QuotaExceeded(StorageError):
    code = "storage_quota_exceeded"


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY:
        raise StorageError(f"storage key must be 1 to {MAX_KEY} characters (got {len(key)})")
    if ".." in key or "//" in key or "\\" in key:
        raise StorageError(f"storage key {key!r} may not contain '..', '//' or a backslash")


class KVStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def set(self, tenant: str, plugin: str, key: str, value: bytes, limit: int) -> None:
        """Write one value. Writers of one plugin are serialised by its usage lock (see ``_ensure_usage``), so
        the first writes of one key no longer race to insert it; should a database still let one through,
        the loser's transaction is rolled back whole and retried, finding the row (usage stays exact)."""
        check_key(key)
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
            delta = len(value) - (item.size if item else 0)
            where = [StorageUsage.tenant_id == tenant, StorageUsage.plugin_id == plugin]
            if delta > 0:
                where.append(StorageUsage.used + delta <= limit)
            updated = s.execute(update(StorageUsage).where(*where).values(used=StorageUsage.used + delta))
            if updated.rowcount == 0:  # type: ignore[attr-defined]
                used = s.execute(select(StorageUsage.used).where(StorageUsage.tenant_id == tenant,
                                                                 StorageUsage.plugin_id == plugin)).scalar_one()
                raise QuotaExceeded(
                    f"allocated size is greater than max storage size: writing {len(value)} bytes to {key!r} would "
                    f"use {used + delta} of the {limit} bytes allowed for {plugin}"
                )
            if item is None:
                s.add(StorageItem(tenant_id=tenant, plugin_id=plugin, key=key, value=value, size=len(value)))
            else:
                item.value, item.size = value, len(value)

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
        with self.db.session() as s:
            self._ensure_usage(s, tenant, plugin)  # the write lock before the read, as in set
            item = s.execute(select(StorageItem).where(
                StorageItem.tenant_id == tenant, StorageItem.plugin_id == plugin, StorageItem.key == key,
            ).with_for_update()).scalar_one_or_none()
            if item is None:
                return 0
            s.execute(update(StorageUsage).where(StorageUsage.tenant_id == tenant, StorageUsage.plugin_id == plugin)
                      .values(used=StorageUsage.used - item.size))
            s.delete(item)
            return 1

    def exist(self, tenant: str, plugin: str, key: str) -> bool:
        check_key(key)
        with self.db.session() as s:
            return s.execute(select(StorageItem.key).where(
                StorageItem.tenant_id == tenant, StorageItem.plugin_id == plugin, StorageItem.key == key,
            )).scalar_one_or_none() is not None

    def used(self, tenant: str, plugin: str) -> int:
        with self.db.session() as s:
            return s.execute(select(StorageUsage.used).where(
                StorageUsage.tenant_id == tenant, StorageUsage.plugin_id == plugin)).scalar_one_or_none() or 0

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
