"""Issue 17 item 3: removing a package while a caller is starting its process leaves no process behind.

Without the start lock, ``remove`` could stop the instance before ``start`` had spawned the process, which
then ran with nothing left to stop it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from plugdock.daemon.plugins.supervisor import Launch, PluginUnavailable, Supervisor
from plugdock.daemon.settings import load_settings

SLOW_START = """import sys, time
time.sleep(0.5)
sys.stdout.write('{"event": "heartbeat", "data": {}}\\n'); sys.stdout.flush()
for _ in sys.stdin:
    pass
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:  # a zombie is gone for our purposes
        return handle.read().split(") ")[-1][0] != "Z"


def test_remove_during_a_start_stops_the_started_process(tmp_path: Path) -> None:
    """B's start waits for a launch slot (A holds the only one) when B is removed: the start must not
    launch B afterwards with nothing left to stop it."""
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "slowstart.py").write_text(SLOW_START)
    settings = load_settings(None, {"home": tmp_path / "home", "max_concurrent_launches": 1}, environ={})

    async def scenario() -> tuple[int | None, int | None]:
        async def no_backwards(*_: object) -> None:
            return None

        supervisor = Supervisor(settings, no_backwards)
        for name in ("a", "b"):
            supervisor.register(Launch(f"a/{name}:0.0.1@x", f"a/{name}", plugin, Path(sys.executable), "slowstart",
                                       {}))
        first, second = supervisor.instances["a/a:0.0.1@x"], supervisor.instances["a/b:0.0.1@x"]
        starting = [asyncio.ensure_future(supervisor.ready(i)) for i in ("a/a:0.0.1@x", "a/b:0.0.1@x")]
        while first.proc is None:  # A holds the launch slot; B waits for it
            await asyncio.sleep(0.01)
        await supervisor.remove("a/b:0.0.1@x")
        await asyncio.gather(*starting, return_exceptions=True)
        pids = (first.proc.pid if first.proc else None, second.proc.pid if second.proc else None)
        await supervisor.shutdown()
        return pids

    first_pid, second_pid = asyncio.run(scenario())
    assert first_pid is not None and not alive(first_pid)  # stopped by the shutdown
    assert second_pid is None or not alive(second_pid)  # B: never left running
    assert not (tmp_path / "home" / "runtime" / "a_b_0.0.1@x").exists()  # its private folder went too


def test_a_removed_package_is_not_started_again(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "slowstart.py").write_text(SLOW_START)
    settings = load_settings(None, {"home": tmp_path / "home"}, environ={})

    async def scenario() -> None:
        async def no_backwards(*_: object) -> None:
            return None

        supervisor = Supervisor(settings, no_backwards)
        supervisor.register(Launch("a/p:0.0.1@x", "a/p", plugin, Path(sys.executable), "slowstart", {}))
        await supervisor.remove("a/p:0.0.1@x")
        with pytest.raises(PluginUnavailable, match="not installed"):
            await supervisor.ready("a/p:0.0.1@x")

    asyncio.run(scenario())
