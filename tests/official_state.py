"""An official dify-plugin-daemon's state for migration tests: its PostgreSQL schema and its storage folder.

The tables are those ``internal/db/init.go`` migrates, with the columns and types GORM derives on PostgreSQL
from ``internal/types/models/`` (daemon at bdb5642a): ``Model`` gives ``id uuid`` and two ``timestamptz``;
``size:N`` strings are ``varchar(N)``, others ``text``; ``int`` is ``bigint``; ``serializer:json`` fields are
``text`` holding JSON. Files sit where its local OSS keeps them under ``PLUGIN_STORAGE_LOCAL_ROOT``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

_MODEL = "id uuid PRIMARY KEY, created_at timestamptz, updated_at timestamptz"
SCHEMA = [
    f"""CREATE TABLE plugins ({_MODEL}, plugin_unique_identifier varchar(255), plugin_id varchar(255),
        refers bigint DEFAULT 0, install_type varchar(127), manifest_type varchar(127), remote_declaration text,
        source varchar(63) DEFAULT '')""",
    "CREATE UNIQUE INDEX idx_plugin_unique_identifier ON plugins (plugin_unique_identifier)",
    f"""CREATE TABLE plugin_installations ({_MODEL}, tenant_id uuid, plugin_id varchar(255),
        plugin_unique_identifier varchar(255), runtime_type varchar(127), endpoints_setups bigint,
        endpoints_active bigint, source varchar(63), meta text)""",
    "CREATE UNIQUE INDEX idx_tenant_plugin ON plugin_installations (tenant_id, plugin_id)",
    f"""CREATE TABLE plugin_declarations ({_MODEL}, plugin_unique_identifier varchar(255) UNIQUE,
        plugin_id varchar(255), declaration text)""",
    f"""CREATE TABLE endpoints ({_MODEL}, name varchar(127) DEFAULT 'default', hook_id varchar(127) UNIQUE,
        tenant_id varchar(64), user_id varchar(64), plugin_id varchar(64), expired_at timestamptz, enabled boolean,
        settings text)""",
    f"""CREATE TABLE serverless_runtimes ({_MODEL}, plugin_unique_identifier varchar(255) UNIQUE,
        function_url varchar(255), function_name varchar(127), type varchar(127), checksum varchar(127))""",
    *(f"""CREATE TABLE {table} ({_MODEL}, tenant_id uuid NOT NULL, provider varchar(127) NOT NULL,
        plugin_unique_identifier varchar(255), plugin_id varchar(255))"""
      for table in ("tool_installations", "ai_model_installations", "agent_strategy_installations",
                    "datasource_installations", "trigger_installations")),
    f"""CREATE TABLE install_tasks ({_MODEL}, status varchar(50) NOT NULL, tenant_id uuid NOT NULL,
        total_plugins bigint NOT NULL, completed_plugins bigint NOT NULL, plugins text)""",
    f"""CREATE TABLE tenant_storages ({_MODEL}, tenant_id varchar(255) NOT NULL, plugin_id varchar(255) NOT NULL,
        size bigint NOT NULL)""",
    f"""CREATE TABLE plugin_readme_records ({_MODEL}, plugin_unique_identifier varchar(255) NOT NULL,
        language varchar(10) NOT NULL, content text NOT NULL)""",
]

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


@contextmanager
def postgres_database(prefix: str = "official") -> Iterator[str]:
    """A fresh database (its URL), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


class OfficialDaemon:
    """Writes rows the way the official daemon does (``curd.InstallPlugin``, ``SetupEndpoint``,
    ``persistence.Save``) and the files it keeps beside them."""

    def __init__(self, url: str, storage: Path) -> None:
        self.engine: Engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        self.storage = storage
        with self.engine.begin() as conn:
            for statement in SCHEMA:
                conn.execute(text(statement))

    def _insert(self, table: str, **values: Any) -> str:
        values = {"id": str(uuid.uuid4()), "created_at": NOW, "updated_at": NOW, **values}
        with self.engine.begin() as conn:
            conn.execute(text(f"INSERT INTO {table} ({', '.join(values)}) VALUES "
                              f"({', '.join(':' + k for k in values)})"), values)
        return str(values["id"])

    def package(self, identifier: str, data: bytes, folder: str = "plugin") -> None:
        """An installed package, named by its identifier (the author is a folder)."""
        path = self.storage / folder / identifier
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def install(self, tenant: str, identifier: str, runtime_type: str = "local", meta: Any = None) -> str:
        plugin_id = identifier.split(":")[0]
        with self.engine.begin() as conn:
            conn.execute(text("INSERT INTO plugins (id, created_at, updated_at, plugin_unique_identifier, plugin_id, "
                              "refers, install_type, source) VALUES (:id, :now, :now, :uid, :pid, 0, :rt, 'package') "
                              "ON CONFLICT (plugin_unique_identifier) DO NOTHING"),
                         {"id": str(uuid.uuid4()), "now": NOW, "uid": identifier, "pid": plugin_id, "rt": runtime_type})
            conn.execute(text("UPDATE plugins SET refers = refers + 1 WHERE plugin_unique_identifier = :uid"),
                         {"uid": identifier})
        return self._insert("plugin_installations", tenant_id=tenant, plugin_id=plugin_id,
                            plugin_unique_identifier=identifier, runtime_type=runtime_type, endpoints_setups=0,
                            endpoints_active=0, source="marketplace",
                            meta=json.dumps({"installed_by": "test"} if meta is None else meta))

    def endpoint(self, tenant: str, plugin_id: str, settings: dict[str, Any], name: str = "main") -> tuple[str, str]:
        """(endpoint id, hook id); ``settings`` as Dify's invoke/encrypt returned them."""
        hook = uuid.uuid4().hex[:24]
        endpoint_id = self._insert("endpoints", name=name, hook_id=hook, tenant_id=tenant, user_id="u-official",
                                   plugin_id=plugin_id, expired_at=dt.datetime(2050, 1, 1, tzinfo=dt.UTC),
                                   enabled=True, settings=json.dumps(settings))
        return endpoint_id, hook

    def store(self, tenant: str, plugin_id: str, key: str, value: bytes) -> None:
        path = self.storage / "persistence" / tenant / plugin_id / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(value)
        with self.engine.begin() as conn:
            updated = conn.execute(text("UPDATE tenant_storages SET size = size + :n WHERE tenant_id = :t AND "
                                        "plugin_id = :p"), {"n": len(value), "t": tenant, "p": plugin_id})
        if not updated.rowcount:
            self._insert("tenant_storages", tenant_id=tenant, plugin_id=plugin_id, size=len(value))

    def close(self) -> None:
        self.engine.dispose()
