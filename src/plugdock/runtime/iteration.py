"""Turn whatever a handler returns (list, generator, async generator) into a plain iterator."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any


def sync_iter(result: Any) -> Iterator[Any]:
    if result is None:
        return iter(())
    if inspect.isasyncgen(result):
        return drain_async(result)
    if isinstance(result, dict):
        return iter((result,))
    return iter(result)


def drain_async(agen: Any) -> Iterator[Any]:
    """An async generator (an ``async def`` handler) driven on a private loop in the worker thread."""
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(agen.__anext__())
            except StopAsyncIteration:
                return
    finally:
        loop.run_until_complete(agen.aclose())
        loop.close()
