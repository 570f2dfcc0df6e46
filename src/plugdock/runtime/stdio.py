"""The local transport: requests on stdin, wire lines on stdout, exactly as the official daemon launches plugins."""

from __future__ import annotations

import asyncio
import os
import sys
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


async def stdin_reader(max_line: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=max_line + 1)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(sys.stdin.fileno(), "rb",
                                                                                           closefd=False))
    return reader


def take_stdout() -> int:
    """Keep a private copy of stdout for the protocol and point fd 1 at stderr, so stray output cannot corrupt it."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    return protocol_fd
