"""Which uid each installed package runs as: allocated once, kept in the database, always in the plugin range.

The table lives where no plugin can write (an earlier build kept it in ``uids.json`` in the home, which a
plugin that got hold of the home could rewrite to map itself to uid 0). Every uid read back is checked
against the range again before it is used to launch or to kill.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from plugdock.daemon.state.db import Database
from plugdock.daemon.state.models import PluginUser
from plugdock.errors import PlugdockError

UID_RANGE = 1 << 22  # sandbox uids: uid_base + 1 .. uid_base + UID_RANGE - 1
MINIMUM_UID_BASE = 10000  # below this, uids of system accounts and people
BUILDER = "plugdock:dependency-builder"  # the table's name for the builder (no package identifier looks like it)


class UidOutOfRange(PlugdockError):
    code = "sandbox_error"


class PluginUsers:
    """Allocates and checks the sandbox uids of one daemon home."""

    def __init__(self, db: Database, uid_base: int, home_tag: str) -> None:
        if uid_base < MINIMUM_UID_BASE or uid_base + UID_RANGE > 2**31 - 1:
            raise UidOutOfRange(f"sandbox_uid_base {uid_base} must lie between {MINIMUM_UID_BASE} and "
                                f"{2**31 - 1 - UID_RANGE} (PLUGDOCK_SANDBOX_UID_BASE)")
        self.db = db
        self.uid_base = uid_base
        self.home_tag = home_tag
        self._lock = threading.Lock()
        self._cache: dict[str, int] = {}

    @property
    def builder_uid(self) -> int:
        """The uid this home's dependency builds run as: unprivileged, never a plugin's, and not shared with
        another daemon's builds (so killing one home's leftovers never touches another's)."""
        return self.uid_for(BUILDER)

    def in_range(self, uid: int) -> bool:
        return self.uid_base <= uid < self.uid_base + UID_RANGE

    def check(self, uid: int, purpose: str) -> int:
        """``uid`` itself when it is one of ours; refused (and logged) otherwise, whatever asked for it."""
        if uid == 0 or not self.in_range(uid):
            sys.stderr.write(f"plugdock: refused to {purpose} with uid {uid}, outside the plugin range "
                             f"{self.uid_base}..{self.uid_base + UID_RANGE - 1}\n")
            raise UidOutOfRange(f"uid {uid} lies outside the plugin range {self.uid_base}.."
                                f"{self.uid_base + UID_RANGE - 1}; refused to {purpose}")
        return uid

    def uid_for(self, unique_identifier: str) -> int:
        """The package's uid, allocated on first use. Derived from the home and the package, so daemons with
        different homes on one machine (which cannot see each other's tables) almost never pick the same
        uid; probed onwards on a clash."""
        cached = self._cache.get(unique_identifier)
        if cached is not None:
            return cached
        with self._lock:
            with self.db.session() as s:
                row = s.get(PluginUser, unique_identifier)
                if row is not None:
                    uid = self.check(row.uid, f"launch {unique_identifier}")
                    self._cache[unique_identifier] = uid
                    return uid
            digest = hashlib.sha256(f"{self.home_tag}:{unique_identifier}".encode()).digest()
            uid = self.uid_base + 1 + int.from_bytes(digest[:4], "big") % (UID_RANGE - 1)
            for _ in range(UID_RANGE):
                try:
                    with self.db.session() as s:
                        s.add(PluginUser(unique_identifier=unique_identifier, uid=uid))
                    break
                except IntegrityError:  # taken by another package (or, on a race, this one)
                    with self.db.session() as s:
                        row = s.get(PluginUser, unique_identifier)
                        if row is not None:
                            uid = row.uid
                            break
                    uid = self.uid_base + 1 + (uid - self.uid_base) % (UID_RANGE - 1)
            self._cache[unique_identifier] = self.check(uid, f"launch {unique_identifier}")
            return uid

    def all_uids(self) -> list[int]:
        """Every uid handed out by this home (the ones a start-up sweep looks for), in range only."""
        with self.db.session() as s:
            uids = list(s.execute(select(PluginUser.uid)).scalars())
        return [uid for uid in uids if uid != 0 and self.in_range(uid)]

    def import_legacy_table(self, path: Path) -> int:
        """Take over ``uids.json`` from an earlier build (entries outside the range are dropped), then remove it."""
        if not path.exists() and not path.is_symlink():
            return 0
        taken = 0
        try:
            table = json.loads(path.read_text()) if path.is_file() and not path.is_symlink() else {}
        except (OSError, ValueError):
            table = {}
        for identifier, uid in (table.items() if isinstance(table, dict) else []):
            if isinstance(identifier, str) and isinstance(uid, int) and uid != 0 and self.in_range(uid):
                try:
                    with self.db.session() as s:
                        if s.get(PluginUser, identifier) is None:
                            s.add(PluginUser(unique_identifier=identifier, uid=uid))
                            taken += 1
                except IntegrityError:
                    continue
        path.unlink(missing_ok=True)
        return taken
