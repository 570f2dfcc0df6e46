"""One way to open a SQL database from a URL, for the daemon's state and the registry's catalogue.

SQLite (a file) by default and PostgreSQL by URL in both; the official daemon's ``postgres://`` spelling is
accepted and psycopg 3 is the driver. SQLite runs in WAL mode so readers never block the writer; a server
database gets pre-ping, so connections a restart broke are replaced and the service recovers by itself.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event


def make_engine(url: str) -> Engine:
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record):  # type: ignore[no-untyped-def]
            cursor = conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    timeout = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    return create_engine(url, pool_pre_ping=True, connect_args=timeout)
