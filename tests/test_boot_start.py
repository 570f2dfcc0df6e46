"""BootStart (PLUGDOCK_START_PLUGINS=boot) on a stand-in supervisor: plugins start in the background, counted
while they start, a failing or crashing one counted as failed without stopping the others, and stop cancels."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from plugdock.daemon.core import BootStart
from plugdock.daemon.plugins.supervisor import PluginUnavailable


class Supervisor:
    """ready() waits for the test to release each plugin, then succeeds or fails as told."""

    def __init__(self, outcomes: dict[str, BaseException | None]) -> None:
        self.outcomes = outcomes
        self.release = {name: asyncio.Event() for name in outcomes}

    async def ready(self, identifier: str) -> None:
        await self.release[identifier].wait()
        outcome = self.outcomes[identifier]
        if outcome is not None:
            raise outcome


async def turns_until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition`` holds (a bounded number of turns, no clock)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def test_plugins_start_in_the_background_and_are_counted_until_done() -> None:
    async def scenario() -> list[Any]:
        sup = Supervisor({"a": None, "b": PluginUnavailable("b failed"), "c": RuntimeError("boom")})
        boot = BootStart(sup, ["a", "b", "c"])  # type: ignore[arg-type]
        seen = [boot.progress()]
        sup.release["a"].set()
        await turns_until(lambda: boot.started == 1)
        seen.append(boot.progress())
        sup.release["b"].set()
        sup.release["c"].set()
        await asyncio.wait_for(asyncio.shield(boot._task), 10)
        seen.append(boot.progress())
        seen.append((boot.started, boot.failed, boot.done))
        return seen

    assert asyncio.run(scenario()) == [
        {"plugins": 3, "started": 0, "failed": 0},
        {"plugins": 3, "started": 1, "failed": 0},
        None,
        (1, 2, True),
    ]


def test_stopping_the_daemon_cancels_a_boot_start_still_running() -> None:
    async def scenario() -> tuple[bool, dict[str, int] | None]:
        boot = BootStart(Supervisor({"slow": None}), ["slow"])  # type: ignore[arg-type]
        await asyncio.sleep(0)
        await boot.cancel()
        return boot.done, boot.progress()

    assert asyncio.run(scenario()) == (True, None)


def test_nothing_installed_is_done_at_once() -> None:
    async def scenario() -> dict[str, int] | None:
        boot = BootStart(Supervisor({}), [])  # type: ignore[arg-type]
        await turns_until(lambda: boot.done)
        return boot.progress()

    assert asyncio.run(scenario()) is None
