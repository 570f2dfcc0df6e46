"""Thread-safe output of wire lines, plus the log and ``print`` forwarding that keeps stdout clean.

Handlers run in worker threads and the event loop writes heartbeats, so every line goes through one
lock; a line is never interleaved with another.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Callable

from plugdock.protocol.messages import log_line


class Output:
    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self._lock = threading.Lock()
        self.closed = False

    def write(self, line: bytes) -> None:
        if self.closed:
            return
        with self._lock:
            try:
                self._write(line)
            except (BrokenPipeError, ConnectionError, OSError):
                self.closed = True

    @classmethod
    def to_fd(cls, fd: int) -> Output:
        def write(data: bytes) -> None:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]

        return cls(write)


class LogHandler(logging.Handler):
    """Sends ``logging`` records to the daemon as ``log`` events (what the official SDK's handler does)."""

    def __init__(self, output: Output) -> None:
        super().__init__()
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.output.write(log_line(record.levelname, self.format(record)))
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


class PrintToLog(io.TextIOBase):
    """Replaces ``sys.stdout`` in a plugin: a stray ``print`` becomes a log event instead of corrupting the wire."""

    def __init__(self, output: Output, level: str = "INFO") -> None:
        self.output = output
        self.level = level
        self._buffer = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            if line:
                self.output.write(log_line(self.level, line))
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            self.output.write(log_line(self.level, self._buffer))
            self._buffer = ""
