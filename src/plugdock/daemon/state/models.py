"""Database tables of the daemon (SQLAlchemy 2 declarative); the schema itself is created by Alembic migrations."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    pass


class PluginRecord(Base):
    """A package the daemon knows (uploaded once, shared by every tenant that installs it)."""

    __tablename__ = "plugins"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    unique_identifier: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    plugin_id: Mapped[str] = mapped_column(String(255), index=True)
    declaration: Mapped[dict[str, Any]] = mapped_column(JSON)
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    env_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    installed: Mapped[int] = mapped_column(Integer, default=0)  # 1 once its files and environment are ready
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Installation(Base):
    """A tenant's installation of a plugin (one version per plugin id and tenant)."""

    __tablename__ = "installations"
    __table_args__ = (UniqueConstraint("tenant_id", "plugin_id", name="uq_installation_tenant_plugin"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    plugin_id: Mapped[str] = mapped_column(String(255), index=True)
    unique_identifier: Mapped[str] = mapped_column(String(255), index=True)
    runtime_type: Mapped[str] = mapped_column(String(32), default="local")
    source: Mapped[str] = mapped_column(String(63), default="")
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)


class InstallTask(Base):
    __tablename__ = "install_tasks"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    total_plugins: Mapped[int] = mapped_column(Integer)
    completed_plugins: Mapped[int] = mapped_column(Integer, default=0)
    plugins: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)


class Environment(Base):
    """A Python environment, content-addressed by (requirements, Python version, platform); shared."""

    __tablename__ = "environments"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    python_version: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class StorageItem(Base):
    """One key of a plugin's persistent store, scoped by tenant and plugin id (no version: survives upgrades)."""

    __tablename__ = "plugin_storage"
    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    plugin_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)


class StorageUsage(Base):
    """Running byte total per (tenant, plugin), updated in the same transaction as every write."""

    __tablename__ = "plugin_storage_usage"
    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    plugin_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)


class CredentialRecord(Base):
    """A tenant's credentials for one provider of one plugin, encrypted at rest (plugdock's own store, used
    when the daemon dispatches reverse model and tool calls itself)."""

    __tablename__ = "credentials"
    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    plugin_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    provider: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "model" or "tool"
    secret: Mapped[bytes] = mapped_column(LargeBinary)  # Fernet token of the JSON credentials
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)


class EndpointRecord(Base):
    """An extension plugin's endpoint set up for a tenant; public traffic reaches it at /e/{hook_id}/..."""

    __tablename__ = "endpoints"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    hook_id: Mapped[str] = mapped_column(String(127), unique=True, index=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    plugin_id: Mapped[str] = mapped_column(String(255), index=True)
    unique_identifier: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(127), default="default")
    enabled: Mapped[int] = mapped_column(Integer, default=1)
    settings: Mapped[bytes] = mapped_column(LargeBinary)  # Fernet token of the JSON settings
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)


class PluginUser(Base):
    """The uid each installed package runs as under the sandbox. Kept in the database, which no plugin can
    reach or write, so no plugin can map itself to another uid (a file in the home once could be)."""

    __tablename__ = "plugin_users"
    unique_identifier: Mapped[str] = mapped_column(String(255), primary_key=True)
    uid: Mapped[int] = mapped_column(Integer, unique=True)
