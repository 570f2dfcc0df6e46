"""The local transport: requests on stdin, wire lines on stdout, exactly as the official daemon launches plugins."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
import threading
from collections.abc import AsyncIterator

from plugdock.protocol.codec import LineTooLong


async def read_lines(reader: asyncio.StreamReader, max_line: int) -> AsyncIterator[bytes | LineTooLong]:
    """Lines from ``reader``; a line over ``max_line`` is dropped whole and reported as a ``LineTooLong`` item."""
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                yield exc.partial
            return
        except asyncio.LimitOverrunError as exc:
            await reader.readexactly(exc.consumed)
            while True:  # discard the rest of the oversized line
                try:
                    await reader.readuntil(b"\n")
                    break
                except asyncio.LimitOverrunError as more:
                    await reader.readexactly(more.consumed)
                except asyncio.IncompleteReadError:
                    return
            yield LineTooLong(f"a request line exceeded the {max_line}-byte limit (PLUGIN_RUNTIME_MAX_BUFFER_SIZE) "
                              "and was dropped")
        else:
            yield line


async def stdin_reader(max_line: int) -> tuple[asyncio.StreamReader, bool]:
    """A reader of stdin, and whether its end is only the end of the input, not of the daemon.

    A pipe or socket (how a daemon launches us) is watched by the loop; anything else (a file of requests
    replayed with ``<``, ``/dev/null``, a terminal) cannot always be registered with epoll, so a thread
    reads it. Only a pipe's EOF means the daemon is gone; after any other the sessions in flight may finish.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=max_line + 1)
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):  # no stdin at all: an empty input
        reader.feed_eof()
        return reader, True
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                     os.fdopen(fd, "rb", closefd=False))
        return reader, False
    _ThreadPump(fd, reader, loop).start()
    return reader, True


class _ThreadPump(asyncio.ReadTransport):
    """Reads a file descriptor in a thread for a StreamReader, a chunk at a time; the reader pauses it when
    its buffer is full, as it pauses a pipe, so a long file of requests is never held in memory whole."""

    def __init__(self, fd: int, reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.fd, self.reader, self.loop = fd, reader, loop
        self.paused = False  # touched on the loop only
        self.may_read = threading.Event()
        self.may_read.set()
        reader.set_transport(self)

    def start(self) -> None:
        threading.Thread(target=self._run, name="plugdock-stdin", daemon=True).start()

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False
        self.may_read.set()

    def is_reading(self) -> bool:
        return not self.paused

    def _feed(self, chunk: bytes) -> None:
        self.reader.feed_data(chunk)  # may call pause_reading
        if not self.paused:
            self.may_read.set()

    def _run(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody reads any more
            try:
                while self.may_read.wait() and (chunk := os.read(self.fd, 65536)):
                    self.may_read.clear()
                    self.loop.call_soon_threadsafe(self._feed, chunk)
            except OSError:  # an unreadable input ends as an empty one does
                pass
            self.loop.call_soon_threadsafe(self.reader.feed_eof)


def take_stdout() -> int:
    """Keep a private copy of stdout for the protocol and point fd 1 at stderr, so stray output cannot corrupt it."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    return protocol_fd
