"""A request in flight inside a plugin: the queue its answers wait in, and how much may wait."""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Waiting:
    """A request in flight: where its messages go, and what reverse calls made from it inherit.

    ``queued`` counts the bytes waiting for the caller; past the session buffer the plugin's output is
    no longer read (the plugin blocks on its pipe) until the caller catches up or is cut."""

    queue: asyncio.Queue[dict[str, Any] | None]
    tenant_id: str
    action_type: str
    user_id: str = ""
    depth: int = 0
    deadline: float = float("inf")
    queued: int = 0
    sizes: collections.deque[int] = field(default_factory=collections.deque)
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    def put(self, message: dict[str, Any] | None, size: int = 0) -> None:
        self.queued += size
        self.sizes.append(size)
        self.drained.clear()
        self.queue.put_nowait(message)

    async def get(self) -> dict[str, Any] | None:
        message = await self.queue.get()
        if self.sizes:
            self.queued -= self.sizes.popleft()
        self.drained.set()
        return message

    def end(self, error: dict[str, Any]) -> None:
        """Close the session with one error after what already waits (the plugin stopped or disconnected);
        a reader held back for this caller goes on."""
        self.closed = True
        self.put(error)
        self.put(None)
        self.drained.set()

    def cut(self, error: dict[str, Any]) -> None:
        """Drop what waits and leave the caller one error and the end (it reads nothing anyway)."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.sizes.clear()
        self.queued = 0
        self.end(error)
