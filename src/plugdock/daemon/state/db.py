"""Engine, sessions and migrations: SQLite (a file under the daemon home) by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from plugdock.engines import make_engine

MIGRATIONS = Path(__file__).parent / "migrations"




def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def outage_reason(exc: OperationalError) -> str:
    """The driver's own first line (host, port, reason), never the statement or its parameters."""
    lines = str(exc.orig).strip().splitlines() if exc.orig is not None else []
    return lines[0] if lines else type(exc).__name__


class Database:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        migrate(self.engine)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        with self.sessionmaker() as session, session.begin():
            yield session

    def problem(self) -> str | None:
        """Why the database cannot be reached right now (None when it answers), for the health check."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except OperationalError as exc:
            return f"unavailable: {outage_reason(exc)}"
        return None

    def close(self) -> None:
        self.engine.dispose()
