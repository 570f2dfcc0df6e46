"""``Plugin.run()``: pick the transport from ``INSTALL_METHOD`` and serve until told to stop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from plugdock.protocol.codec import encode
from plugdock.protocol.messages import Event, event_line, log_line
from plugdock.runtime.output import LogHandler, Output, PrintToLog
from plugdock.runtime.registry import PluginRegistry, RegistryError
from plugdock.sdk.config import DifyPluginEnv, InstallMethod

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from plugdock.protocol.codec import LineTooLong
    from plugdock.runtime.executor import Executor
    from plugdock.runtime.server import PluginServer


def run_plugin(config: DifyPluginEnv, root: str | Path | None = None) -> None:
    root = Path(root or os.getcwd())
    if InstallMethod.Remote == config.INSTALL_METHOD:
        from plugdock.runtime.remote import run_remote

        sys.exit(run_remote(config, root))
    if InstallMethod.Serverless == config.INSTALL_METHOD:
        from plugdock.runtime.serverless import run_serverless

        sys.exit(run_serverless(config, root))
    run_stdio(config, root)


def install_logging(output: Output) -> None:
    handler = LogHandler(output)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root_logger = logging.getLogger()
    root_logger.handlers = [handler]
    root_logger.setLevel(logging.INFO)


def die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the parent dies, and exit at once on SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - the parent-PID watch still covers it
            pass


def run_stdio(config: DifyPluginEnv, root: Path) -> None:
    from plugdock.runtime.stdio import take_stdout

    output = Output.to_fd(take_stdout())
    install_logging(output)
    sys.stdout = PrintToLog(output)
    die_with_parent()
    from plugdock.runtime.executor import Executor

    try:
        registry = PluginRegistry.load(root)
        executor = Executor(registry)  # trigger and datasource classes load here: a missing one is named too
    except RegistryError as exc:
        output.write(event_line(Event.ERROR, None, {"error": f"plugin failed to load: {exc}"}))
        sys.stderr.write(f"plugdock: plugin failed to load: {exc}\n")
        os._exit(1)
    output.write(encode(registry.manifest))
    asyncio.run(_serve_stdio(config, registry, executor, output))
    os._exit(0)  # stdin closed: leave now, without waiting for handler threads


async def _serve_stdio(config: DifyPluginEnv, registry: PluginRegistry, executor: Executor, output: Output) -> None:
    from plugdock.runtime.server import PluginServer
    from plugdock.runtime.stdio import read_lines, stdin_reader

    server = PluginServer(executor, config, output)
    tasks = [asyncio.ensure_future(server.heartbeat()),
             asyncio.ensure_future(server.watch_parent(lambda: os._exit(0)))]
    for line in executor.summary:
        output.write(log_line("INFO", f"Installed {line}"))
    reader, replay = await stdin_reader(server.max_line)
    lines = read_lines(reader, server.max_line)
    await server.serve(_then_answered(lines, server) if replay else lines)
    for task in tasks:
        task.cancel()


async def _then_answered(lines: AsyncIterator[bytes | LineTooLong], server: PluginServer,
                         ) -> AsyncIterator[bytes | LineTooLong]:
    """``lines``, then a wait for the sessions in flight: a replayed file's end is not the daemon leaving, and
    its answers are what the developer came for (the server's watchdog still ends a session that overstays)."""
    async for line in lines:
        yield line
    while server.sessions:
        await asyncio.sleep(0.05)
