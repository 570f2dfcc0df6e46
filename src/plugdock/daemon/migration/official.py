"""An official dify-plugin-daemon's state, read without changing anything: its database and its storage folder.

The database is the one its GORM models create (``internal/types/models/``, ``internal/db/init.go``):
``plugin_installations`` (one row per tenant and plugin id), ``endpoints`` (no package identifier: an
endpoint belongs to the tenant's installation of its plugin id; ``settings`` is JSON text as Dify's
``invoke/encrypt`` returned it) and ``tenant_storages`` (which plugins of which tenant ever stored a key).
The storage folder is ``PLUGIN_STORAGE_LOCAL_ROOT`` of its local OSS: packages under
``PLUGIN_INSTALLED_PATH`` (default ``plugin``) or ``PLUGIN_PACKAGE_CACHE_PATH`` (``plugin_packages``), each
file named by its unique identifier (``author/name:version@checksum``, so the author is a folder), and the
key-value store under ``PERSISTENCE_STORAGE_PATH`` (``persistence``) as ``<tenant>/<plugin id>/<key>``, one
file per key (``internal/core/persistence/wrapper.go``). Remote-debugging keys live in Redis, not here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from plugdock.daemon.migration.report import Kind
from plugdock.daemon.state.db import outage_reason
from plugdock.engines import make_engine
from plugdock.errors import PlugdockError

TENANT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PLUGIN_ID = re.compile(r"^(?:[a-z0-9_-]{1,64}/)?[a-z0-9_-]{1,255}$")

# table: (required columns, optional columns); optional ones came in later official versions
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "plugin_installations": (("id", "tenant_id", "plugin_id", "plugin_unique_identifier", "runtime_type"),
                             ("source", "meta", "created_at", "updated_at")),
    "endpoints": (("id", "hook_id", "tenant_id", "plugin_id", "settings"),
                  ("name", "user_id", "enabled", "created_at", "updated_at")),
    "tenant_storages": (("tenant_id", "plugin_id"), ()),
}


class OfficialStateError(PlugdockError):
    code = "official_state_error"


@dataclass(frozen=True)
class Layout:
    """Where the official daemon keeps files, relative to its storage root (its own setting names)."""

    root: Path
    installed: str = "plugin"  # PLUGIN_INSTALLED_PATH
    packages: str = "plugin_packages"  # PLUGIN_PACKAGE_CACHE_PATH
    persistence: str = "persistence"  # PERSISTENCE_STORAGE_PATH

    def package_file(self, identifier: str) -> Path | None:
        """The package of an identifier: installed copy first, then the upload cache (the identifier is parsed
        before it gets here, so it cannot leave the folder)."""
        for folder in (self.installed, self.packages):
            path = self.root / folder / identifier
            if path.is_file() and not path.is_symlink():
                return path
        return None


@dataclass(frozen=True)
class OfficialInstallation:
    id: str
    tenant_id: str
    plugin_id: str
    unique_identifier: str
    runtime_type: str
    source: str
    meta: dict[str, Any]
    created_at: dt.datetime | None
    updated_at: dt.datetime | None


@dataclass(frozen=True)
class OfficialEndpoint:
    id: str
    tenant_id: str
    user_id: str
    plugin_id: str
    hook_id: str
    name: str
    enabled: bool
    settings: dict[str, Any]
    created_at: dt.datetime | None
    updated_at: dt.datetime | None


@dataclass(frozen=True)
class StoredValue:
    tenant_id: str
    plugin_id: str
    key: str
    path: Path

    def read(self) -> bytes:
        return self.path.read_bytes()


@dataclass
class OfficialState:
    installations: list[OfficialInstallation] = field(default_factory=list)
    endpoints: list[OfficialEndpoint] = field(default_factory=list)
    storage: list[StoredValue] = field(default_factory=list)
    storage_pairs: list[tuple[str, str]] = field(default_factory=list)  # (tenant, plugin id) that stored keys
    problems: list[tuple[Kind, str, str]] = field(default_factory=list)  # (kind, item, reason): unreadable rows


def _json_object(value: Any, where: str) -> dict[str, Any]:
    """A JSON-object column (GORM's json serializer writes text; ``null`` for an empty map)."""
    if value is None or isinstance(value, dict):
        return dict(value or {})
    raw = bytes(value).decode() if isinstance(value, bytes | memoryview) else str(value)
    try:
        parsed = json.loads(raw) if raw.strip() else None
    except ValueError as exc:
        raise ValueError(f"{where} is not JSON ({exc})") from None
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise ValueError(f"{where} is JSON {type(parsed).__name__}, not an object")
    return parsed


def _rows(conn: Connection, table: str, present: set[str]) -> list[dict[str, Any]]:
    required, optional = TABLES[table]
    missing = [c for c in required if c not in present]
    if missing:
        raise OfficialStateError(f"table {table} has no column {', '.join(missing)}: not an official "
                                 "dify-plugin-daemon database (or a version this import does not know)")
    columns = [c for c in (*required, *optional) if c in present]
    result = conn.execute(text(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {columns[0]}"))
    return [{c: row._mapping.get(c) for c in (*required, *optional)} for row in result]


def read_database(url: str) -> OfficialState:
    """Installations, endpoints and the (tenant, plugin) pairs that stored keys, in one read-only snapshot."""
    try:
        engine = make_engine(url)
    except ImportError as exc:  # the official daemon also runs on MySQL, whose driver plugdock does not ship
        raise OfficialStateError(f"--db: the database driver {exc.name or ''} is not installed; for MySQL, "
                                 "pip install pymysql and give a mysql+pymysql:// URL") from None
    except (SQLAlchemyError, ValueError) as exc:
        raise OfficialStateError(f"--db: cannot use the database URL ({type(exc).__name__}: {exc})") from None
    state = OfficialState()
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":  # one consistent snapshot, and no writes by mistake
                conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            tables = set(inspect(conn).get_table_names())
            absent = [t for t in TABLES if t not in tables]
            if absent:
                raise OfficialStateError(
                    f"the database has no table {', '.join(absent)}: not an official dify-plugin-daemon database "
                    f"(tables found: {', '.join(sorted(tables)) or 'none'})")
            columns = {t: {c["name"] for c in inspect(conn).get_columns(t)} for t in TABLES}
            installations = _rows(conn, "plugin_installations", columns["plugin_installations"])
            endpoints = _rows(conn, "endpoints", columns["endpoints"])
            pairs = {(str(r["tenant_id"]), str(r["plugin_id"])) for r in _rows(conn, "tenant_storages",
                                                                              columns["tenant_storages"])}
            conn.rollback()
    except OperationalError as exc:
        raise OfficialStateError(f"--db: cannot read the official database: {outage_reason(exc)}") from None
    except SQLAlchemyError as exc:
        raise OfficialStateError(f"--db: reading the official database failed: {type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()
    for row in installations:
        item = f"{row['plugin_unique_identifier']} for tenant {row['tenant_id']} (plugin_installations {row['id']})"
        try:
            meta = _json_object(row["meta"], "column meta")
        except ValueError as exc:
            state.problems.append(("installation", item, str(exc)))
            continue
        state.installations.append(OfficialInstallation(
            id=str(row["id"]), tenant_id=str(row["tenant_id"]), plugin_id=str(row["plugin_id"]),
            unique_identifier=str(row["plugin_unique_identifier"]), runtime_type=str(row["runtime_type"] or ""),
            source=str(row["source"] or ""), meta=meta, created_at=row["created_at"], updated_at=row["updated_at"]))
        pairs.add((str(row["tenant_id"]), str(row["plugin_id"])))
    for row in endpoints:
        item = f"{row['hook_id']} of {row['plugin_id']} for tenant {row['tenant_id']} (endpoints {row['id']})"
        try:
            settings = _json_object(row["settings"], "column settings")
        except ValueError as exc:
            state.problems.append(("endpoint", item, str(exc)))
            continue
        state.endpoints.append(OfficialEndpoint(
            id=str(row["id"]), tenant_id=str(row["tenant_id"]), user_id=str(row["user_id"] or ""),
            plugin_id=str(row["plugin_id"]), hook_id=str(row["hook_id"]), name=str(row["name"] or "default"),
            enabled=bool(row["enabled"]) if row["enabled"] is not None else True, settings=settings,
            created_at=row["created_at"], updated_at=row["updated_at"]))
    state.problems.extend(("storage", f"{plugin} for tenant {tenant}", "not a tenant and plugin id that can name a "
                           "folder") for tenant, plugin in sorted(pairs)
                          if not TENANT.match(tenant) or not PLUGIN_ID.match(plugin))
    state.storage_pairs = sorted(p for p in pairs if TENANT.match(p[0]) and PLUGIN_ID.match(p[1]))
    return state


def read_storage(layout: Layout, pairs: list[tuple[str, str]], state: OfficialState) -> None:
    """Every key the listed plugins stored, from ``<persistence>/<tenant>/<plugin id>/``; links are not followed."""
    base = layout.root / layout.persistence
    for tenant, plugin in pairs:
        folder = base / tenant / plugin
        if not folder.is_dir() or folder.is_symlink():
            continue
        # a plugin id without an author is a folder that may also hold authors' plugins of the same tenant
        nested = {p.split("/", 1)[1] for t, p in pairs if t == tenant and p.startswith(plugin + "/")}
        for current, dirs, files in os.walk(folder, followlinks=False):
            here = Path(current)
            if here == folder:
                dirs[:] = [d for d in dirs if d not in nested]
            for name in sorted(files) + [d for d in dirs if (here / d).is_symlink()]:
                path = here / name
                key = path.relative_to(folder).as_posix()
                if path.is_symlink():
                    state.problems.append(("storage", f"{key!r} of {plugin} for tenant {tenant}",
                                           f"{path} is a symbolic link, not a stored value"))
                    continue
                state.storage.append(StoredValue(tenant, plugin, key, path))


def read_official(url: str, layout: Layout) -> OfficialState:
    if not layout.root.is_dir():
        raise OfficialStateError(f"--storage: {layout.root} is not a folder (the official daemon's "
                                 "PLUGIN_STORAGE_LOCAL_ROOT)")
    state = read_database(url)
    read_storage(layout, state.storage_pairs, state)
    return state
