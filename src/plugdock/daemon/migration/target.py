"""What the plugdock home holds already, read before anything is written: the plan compares against it, so a
second run finds every item unchanged. A dry run reads it without migrating or creating the database."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from plugdock.daemon.settings import Settings
from plugdock.daemon.state.models import EndpointRecord, Installation, PluginRecord, StorageItem
from plugdock.engines import make_engine
from plugdock.errors import PlugdockError


@dataclass
class Snapshot:
    installations: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # id: (tenant, plugin id, uid)
    installed: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # (tenant, plugin): (id, uid)
    endpoints: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # id: (hook id, tenant, plugin id)
    hooks: dict[str, str] = field(default_factory=dict)  # hook id: endpoint id
    packages: dict[str, int] = field(default_factory=dict)  # uid: PluginRecord.installed
    storage: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (tenant, plugin, key): sha256


def digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def read_snapshot(session: Session, pairs: list[tuple[str, str]]) -> Snapshot:
    """The rows the import could collide with; storage only for the plugins being imported."""
    snap = Snapshot()
    for row in session.execute(select(Installation)).scalars():
        snap.installations[row.id] = (row.tenant_id, row.plugin_id, row.unique_identifier)
        snap.installed[(row.tenant_id, row.plugin_id)] = (row.id, row.unique_identifier)
    for endpoint in session.execute(select(EndpointRecord)).scalars():
        snap.endpoints[endpoint.id] = (endpoint.hook_id, endpoint.tenant_id, endpoint.plugin_id)
        snap.hooks[endpoint.hook_id] = endpoint.id
    for uid, installed in session.execute(select(PluginRecord.unique_identifier, PluginRecord.installed)):
        snap.packages[uid] = int(installed)
    for tenant, plugin in pairs:
        rows = session.execute(select(StorageItem.key, StorageItem.value).where(
            StorageItem.tenant_id == tenant, StorageItem.plugin_id == plugin))
        for key, value in rows:
            snap.storage[(tenant, plugin, key)] = digest(bytes(value))
    return snap


def read_without_writing(settings: Settings, pairs: list[tuple[str, str]]) -> Snapshot:
    """The snapshot for a dry run: an absent SQLite file or a database without plugdock's tables is empty."""
    url = settings.database_url
    if not settings.db_url and not Path(settings.home / "plugdock.db").exists():
        return Snapshot()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if "installations" not in inspect(conn).get_table_names():
                return Snapshot()
        with Session(engine) as session:
            return read_snapshot(session, pairs)
    except SQLAlchemyError as exc:
        raise PlugdockError(f"cannot read the plugdock database {settings.database_shown} for the dry run: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()
