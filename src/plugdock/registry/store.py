"""The registry's records: one row per published package version, SQLite by default and PostgreSQL by URL.

A version, once published, is immutable: its unique identifier (``org/name:version@checksum``) is what Dify stores
for an installation and asks for again, so the same version with other bytes is refused, never replaced. Yanking
hides a version from "latest" and from listings while every exact reference to it keeps working.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from packaging.version import InvalidVersion, Version
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from plugdock.engines import make_engine


class Base(DeclarativeBase):
    pass


class PackageVersion(Base):
    __tablename__ = "registry_versions"
    __table_args__ = (UniqueConstraint("plugin_id", "version", name="uq_registry_plugin_version"),)

    unique_identifier: Mapped[str] = mapped_column(String(400), primary_key=True)
    plugin_id: Mapped[str] = mapped_column(String(200), index=True)
    org: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    checksum: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    declaration: Mapped[dict[str, Any]] = mapped_column(JSON)
    readme: Mapped[str] = mapped_column(Text, default="")
    icon: Mapped[str] = mapped_column(String(300), default="")  # entry name inside the package
    size: Mapped[int] = mapped_column(Integer)
    signed: Mapped[bool] = mapped_column(Boolean, default=False)
    yanked: Mapped[bool] = mapped_column(Boolean, default=False)
    yank_reason: Mapped[str] = mapped_column(Text, default="")
    install_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


def version_key(row: PackageVersion) -> tuple[int, Version | str]:
    try:
        return (1, Version(row.version))
    except InvalidVersion:
        return (0, row.version)




class Catalog:
    """Queries over the versions; every method opens and closes its own session."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as s:
            yield s

    def get(self, unique_identifier: str) -> PackageVersion | None:
        with self.session() as s:
            return s.get(PackageVersion, unique_identifier)

    def by_version(self, plugin_id: str, version: str) -> PackageVersion | None:
        with self.session() as s:
            return s.execute(select(PackageVersion).where(PackageVersion.plugin_id == plugin_id,
                                                          PackageVersion.version == version)).scalar_one_or_none()

    def versions(self, plugin_id: str) -> list[PackageVersion]:
        """Every version of the plugin, newest first, yanked ones included."""
        with self.session() as s:
            rows = s.execute(select(PackageVersion).where(PackageVersion.plugin_id == plugin_id)).scalars().all()
        return sorted(rows, key=version_key, reverse=True)

    def latest(self, plugin_id: str) -> PackageVersion | None:
        return next((row for row in self.versions(plugin_id) if not row.yanked), None)

    def plugin_ids(self) -> list[str]:
        with self.session() as s:
            return sorted(s.execute(select(PackageVersion.plugin_id).distinct()).scalars().all())

    def latest_of_all(self) -> list[PackageVersion]:
        """The newest version of each plugin that has one not yanked."""
        found = (self.latest(plugin_id) for plugin_id in self.plugin_ids())
        return [row for row in found if row is not None]

    def installs(self, plugin_id: str) -> int:
        with self.session() as s:
            total = s.execute(select(func.sum(PackageVersion.install_count))
                              .where(PackageVersion.plugin_id == plugin_id)).scalar()
        return int(total or 0)

    def add(self, row: PackageVersion) -> tuple[PackageVersion, bool] | None:
        """Store a new version; (the stored row, False) when that exact identifier is stored already; None when
        another upload stored the same version with other contents meanwhile."""
        try:
            with self.session() as s:
                existing = s.get(PackageVersion, row.unique_identifier)
                if existing is not None:
                    return existing, False
                s.add(row)
        except IntegrityError:
            existing = self.get(row.unique_identifier)
            return (existing, False) if existing is not None else None
        return row, True

    def yank(self, unique_identifier: str, yanked: bool, reason: str) -> PackageVersion | None:
        with self.session() as s:
            row = s.get(PackageVersion, unique_identifier)
            if row is not None:
                row.yanked, row.yank_reason = yanked, reason if yanked else ""
            return row

    def count_install(self, unique_identifier: str) -> bool:
        with self.session() as s:
            row = s.get(PackageVersion, unique_identifier)
            if row is None:
                return False
            row.install_count += 1
            return True
