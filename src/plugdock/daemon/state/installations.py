"""Which package a tenant has installed under a plugin id, answered from memory on the dispatch path.

Every dispatch needs this one fact; reading it from the database cost more than the rest of the daemon's
work for the request (profiled). Every transaction that writes the installations table — ORM objects or
bulk statements, from any module — empties the cache when it commits; a reader stores what it read only
if no such commit happened meanwhile, so a stale answer can never be kept. (One daemon process per
database, as everywhere in plugdock.)
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session

from plugdock.daemon.state.db import Database
from plugdock.daemon.state.models import Installation

_TOUCHED = "plugdock_installations_touched"


class InstallationIndex:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[tuple[str, str], str | None] = {}
        self._generation = 0
        self._lock = threading.Lock()
        sessions = db.sessionmaker
        event.listen(sessions, "after_flush", self._after_flush)
        event.listen(sessions, "do_orm_execute", self._on_execute)
        event.listen(sessions, "after_commit", self._after_commit)

    def installed(self, tenant_id: str, plugin_id: str) -> str | None:
        key = (tenant_id, plugin_id)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            generation = self._generation
        with self.db.session() as s:
            identifier = s.execute(select(Installation.unique_identifier).where(
                Installation.tenant_id == tenant_id, Installation.plugin_id == plugin_id)).scalar_one_or_none()
        with self._lock:
            if generation == self._generation:
                self._cache[key] = identifier
        return identifier

    # -- invalidation -------------------------------------------------------------------------------
    @staticmethod
    def _after_flush(session: Session, _context: Any) -> None:
        if any(isinstance(obj, Installation) for obj in (*session.new, *session.dirty, *session.deleted)):
            session.info[_TOUCHED] = True

    @staticmethod
    def _on_execute(state: ORMExecuteState) -> None:
        if (state.is_delete or state.is_update or state.is_insert) and state.bind_mapper is not None \
                and state.bind_mapper.class_ is Installation:
            state.session.info[_TOUCHED] = True

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_TOUCHED, False):
            with self._lock:
                self._generation += 1
                self._cache.clear()
