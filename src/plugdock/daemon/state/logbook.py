"""The daemon's log lines: each plugin's, stamped with when they arrived, and the daemon's own on stderr.

A plugin's lines stay strings to every reader (``list(instance.logs)``); the stamps and a running sequence
number ride beside them, so that ``plugdock logs`` can show when each line came and ``--follow`` can ask for
what came after the last line it printed.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any


def stamp(when: float | None = None) -> str:
    """A UTC time as ISO 8601 to the millisecond, e.g. ``2026-12-02T01:02:03.456Z``."""
    moment = datetime.fromtimestamp(time.time() if when is None else when, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class LogLines(collections.deque[str]):
    """A bounded deque of log lines that remembers when each line came and its sequence number."""

    def __init__(self, lines: Iterable[str] = (), maxlen: int | None = 1000) -> None:
        super().__init__((), maxlen)
        self.times: collections.deque[float] = collections.deque(maxlen=maxlen)
        self.last = 0  # the sequence number of the newest line; the oldest kept is last - len(self) + 1
        for line in lines:
            self.append(line)

    def append(self, line: str) -> None:
        super().append(line)
        self.times.append(time.time())
        self.last += 1

    def entries(self, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest ``limit`` lines whose sequence number is above ``after``, oldest first."""
        first = self.last - len(self) + 1
        rows = [{"seq": first + i, "time": stamp(t), "line": line}
                for i, (t, line) in enumerate(zip(self.times, self, strict=False)) if first + i > after]
        return rows[-max(1, limit):]


def entries_of(logs: Iterable[str], after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    """:meth:`LogLines.entries` of any kept lines; a plain deque's lines come with no time."""
    if isinstance(logs, LogLines):
        return logs.entries(after, limit)
    lines = list(logs)
    return [{"seq": i + 1, "time": "", "line": line} for i, line in enumerate(lines) if i + 1 > after][-limit:]


def last_seq(logs: Iterable[str]) -> int:
    return logs.last if isinstance(logs, LogLines) else len(list(logs))


def daemon_line(text: str) -> None:
    """One line of the daemon's own log on stderr, stamped (never a request body, header or key)."""
    sys.stderr.write(f"{stamp()} {text}\n")
    sys.stderr.flush()


def failure_line(route: str, error_type: str, message: str) -> str:
    """How a failed invocation appears in the plugin's log: which route, what error (the time is its stamp)."""
    return f"[failed] {route}: {error_type}: {message[:1000]}"


async def watch_install_task(read: Callable[[], Any], task_id: str, emit: Callable[[str], None] = daemon_line,
                             every: float = 0.5, bound: float = 24 * 3600) -> None:
    """Log an install task's outcome, each plugin's identifier and result, once it has finished.

    ``read`` returns the task's row as a dict (status, plugins) or None once it is gone."""
    deadline = time.monotonic() + bound
    started = False
    while time.monotonic() < deadline:
        task = await asyncio.to_thread(read)
        if task is None:
            return
        if not started:
            started = True
            names = ", ".join(str(p.get("plugin_unique_identifier")) for p in task["plugins"])
            emit(f"install task {task_id} started for tenant {task['tenant_id']}: {names}")
        if task["status"] in ("success", "failed"):
            for plugin in task["plugins"]:
                result = "installed" if plugin.get("status") == "success" else f"failed: {plugin.get('message')}"
                emit(f"install task {task_id}: {plugin.get('plugin_unique_identifier')} {result}")
            emit(f"install task {task_id}: {task['status']}")
            return
        await asyncio.sleep(every)
