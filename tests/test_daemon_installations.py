"""The in-memory index of installations on the dispatch path never answers from a stale entry."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, update

from plugdock.daemon.state.db import Database
from plugdock.daemon.state.installations import InstallationIndex
from plugdock.daemon.state.models import Installation


def test_every_kind_of_write_is_seen(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    index = InstallationIndex(db)
    assert index.installed("t", "a/p") is None  # cached as absent...
    with db.session() as s:
        s.add(Installation(tenant_id="t", plugin_id="a/p", unique_identifier="a/p:1@x"))
    assert index.installed("t", "a/p") == "a/p:1@x"  # ...until an ORM insert commits
    with db.session() as s:
        s.execute(update(Installation).where(Installation.plugin_id == "a/p").values(unique_identifier="a/p:2@y"))
    assert index.installed("t", "a/p") == "a/p:2@y"  # bulk update
    with db.session() as s:
        row = s.query(Installation).one()
        row.unique_identifier = "a/p:3@z"
    assert index.installed("t", "a/p") == "a/p:3@z"  # ORM change
    with db.session() as s:
        s.execute(delete(Installation).where(Installation.tenant_id == "t"))
    assert index.installed("t", "a/p") is None  # bulk delete
    with db.session() as s:
        s.add(Installation(tenant_id="t", plugin_id="a/p", unique_identifier="a/p:4@w"))
    with db.session() as s:
        s.delete(s.query(Installation).one())
    assert index.installed("t", "a/p") is None  # ORM delete
    assert index.installed("other", "a/p") is None


def test_a_rolled_back_write_changes_nothing(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    index = InstallationIndex(db)
    with db.session() as s:
        s.add(Installation(tenant_id="t", plugin_id="a/p", unique_identifier="a/p:1@x"))
    assert index.installed("t", "a/p") == "a/p:1@x"
    try:
        with db.session() as s:
            s.execute(delete(Installation))
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    assert index.installed("t", "a/p") == "a/p:1@x"
