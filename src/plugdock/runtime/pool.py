"""An elastic worker pool: a few threads when handlers are quick, more when they block.

A fixed pool of hundreds of threads makes quick handlers fight over the GIL; a small pool lets slow
(blocking) handlers starve the rest. This pool keeps ``core`` threads and adds one whenever work is
waiting while no task has finished for a moment (the workers are blocked), up to ``maximum``; extra
threads leave after ``idle_timeout`` seconds without work.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

STALL = 0.01  # seconds without a finished task, with work waiting, before a thread is added


class ElasticPool:
    def __init__(self, core: int, maximum: int, idle_timeout: float = 30.0, name: str = "plugdock") -> None:
        self.core = max(1, min(core, maximum))
        self.maximum = max(1, maximum)
        self.idle_timeout = idle_timeout
        self.name = name
        self._queue: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.threads = 0
        self._idle = 0
        self._last_progress = time.monotonic()
        for _ in range(self.core):
            self._spawn()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._queue.put((fn, args))
        with self._lock:
            if self._idle == 0 and self.threads < self.maximum and time.monotonic() - self._last_progress > STALL:
                self._spawn()

    def check(self) -> None:
        """Add threads when work waits behind blocked workers (call this periodically)."""
        waiting = self._queue.qsize()
        with self._lock:
            if waiting and self._idle == 0 and time.monotonic() - self._last_progress > STALL:
                for _ in range(min(waiting, self.maximum - self.threads)):
                    self._spawn()

    def _spawn(self) -> None:
        self.threads += 1
        try:
            threading.Thread(target=self._work, name=f"{self.name}-{self.threads}", daemon=True).start()
        except RuntimeError:  # a thread or process limit (RLIMIT_NPROC, sandbox): work waits for the threads we have
            self.threads -= 1
            self.maximum = max(self.core, self.threads)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
                extra = self.threads > self.core
            try:
                fn, args = self._queue.get(timeout=self.idle_timeout if extra else None)
            except queue.Empty:
                with self._lock:
                    self._idle -= 1
                    if self.threads > self.core:
                        self.threads -= 1
                        return
                continue
            with self._lock:
                self._idle -= 1
            try:
                fn(*args)
            finally:
                self._last_progress = time.monotonic()
