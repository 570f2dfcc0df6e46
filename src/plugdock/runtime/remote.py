"""Remote debugging: connect to a daemon's debug port, register the plugin, then serve over the socket.

The daemon answers a bad key with one plain-text line and closes; that is reported and not retried.
A dropped connection is retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from plugdock.protocol.debugging import InitializeType, asset_lines, init_line
from plugdock.protocol.messages import Event, event_line
from plugdock.runtime.output import Output
from plugdock.sdk.config import DifyPluginEnv

if TYPE_CHECKING:
    from plugdock.runtime.executor import Executor

logger = logging.getLogger("plugdock.remote")
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)
REJECT_WINDOW = 5.0  # seconds after registering in which a silent close means "refused"


class RemoteRejected(Exception):
    """The daemon refused the registration (bad key, invalid declaration...)."""


def remote_address(config: DifyPluginEnv) -> tuple[str, int]:
    url = config.REMOTE_INSTALL_URL
    if url:
        if "://" in url:
            parts = urlsplit(url)
            if parts.hostname and parts.port:
                return parts.hostname, parts.port
        host, sep, port = url.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"REMOTE_INSTALL_URL {url!r} must be host:port")
        return host, int(port)
    return config.REMOTE_INSTALL_HOST, int(config.REMOTE_INSTALL_PORT)


def registration_lines(root: Path, key: str) -> list[bytes]:
    """Handshake, declarations (one list per provider kind), assets in chunks, then ``end``."""
    from plugdock.packaging.ignore import ignore_filter
    from plugdock.schema.declaration import plugin_declaration, provider_declarations
    from plugdock.schema.plugin import DirectorySource, load_plugin

    source = DirectorySource(root, exclude=ignore_filter(root))
    plugin = load_plugin(source)
    if not plugin.ok:
        problems = "; ".join(str(p) for p in plugin.errors[:5])
        raise RemoteRejected(f"the plugin does not validate: {problems}")
    lines = [init_line(InitializeType.HANDSHAKE, {"key": key}),
             init_line(InitializeType.MANIFEST_DECLARATION, plugin_declaration(plugin))]
    kinds = {
        "tool": InitializeType.TOOL_DECLARATION, "model": InitializeType.MODEL_DECLARATION,
        "endpoint": InitializeType.ENDPOINT_DECLARATION, "agent_strategy": InitializeType.AGENT_STRATEGY_DECLARATION,
        "datasource": InitializeType.DATASOURCE_DECLARATION, "trigger": InitializeType.TRIGGER_DECLARATION,
    }
    for kind, declaration in provider_declarations(plugin).items():
        lines.append(init_line(kinds[kind], [declaration]))
    for rel in source.files():
        if rel.startswith("_assets/"):
            lines.extend(asset_lines(rel.removeprefix("_assets/"), (root / rel).read_bytes()))
    lines.append(init_line(InitializeType.END, {}))
    return lines


def run_remote(config: DifyPluginEnv, root: Path) -> int:
    if not config.REMOTE_INSTALL_KEY:
        sys.stderr.write("plugdock: REMOTE_INSTALL_KEY is not set; get a debug key from the daemon first\n")
        return 2
    from plugdock.runtime.executor import Executor
    from plugdock.runtime.registry import PluginRegistry, RegistryError

    try:
        host, port = remote_address(config)
        lines = registration_lines(root, config.REMOTE_INSTALL_KEY)
    except (ValueError, RemoteRejected) as exc:
        sys.stderr.write(f"plugdock: {exc}\n")
        return 2
    try:  # before connecting: a plugin that cannot load is one line here, not a traceback mid-session
        executor = Executor(PluginRegistry.load(root))
    except RegistryError as exc:
        sys.stderr.write(f"plugdock: plugin failed to load: {exc}\n")
        return 1
    try:
        return asyncio.run(_connect_loop(config, executor, host, port, lines))
    except KeyboardInterrupt:  # Ctrl-C is how an author stops debugging: one line, no traceback
        sys.stderr.write("plugdock: stopped; the daemon drops the plugin now that the connection closed\n")
        return 130


async def _connect_loop(config: DifyPluginEnv, executor: Executor, host: str, port: int, lines: list[bytes]) -> int:
    attempt = 0
    while True:
        try:
            await _session(config, executor, host, port, lines)
            attempt = 0
            sys.stderr.write("plugdock: the daemon closed the debug connection; reconnecting\n")
        except RemoteRejected as exc:
            sys.stderr.write(f"plugdock: the daemon rejected the plugin: {exc}\n")
            return 1
        except OSError as exc:
            if attempt >= len(RETRY_DELAYS):
                sys.stderr.write(f"plugdock: cannot reach the daemon at {host}:{port} ({exc}); giving up\n")
                return 1
            delay = RETRY_DELAYS[attempt]
            sys.stderr.write(f"plugdock: cannot reach the daemon at {host}:{port} ({exc}); retrying in {delay:g} s\n")
            await asyncio.sleep(delay)
            attempt += 1


async def _session(config: DifyPluginEnv, executor: Executor, host: str, port: int, lines: list[bytes]) -> None:
    from plugdock.runtime.server import PluginServer
    from plugdock.runtime.stdio import read_lines

    reader, writer = await asyncio.open_connection(host, port, limit=int(config.PLUGIN_RUNTIME_MAX_BUFFER_SIZE) + 1)
    loop = asyncio.get_running_loop()
    def send(data: bytes) -> None:
        loop.call_soon_threadsafe(writer.write, data)

    output = Output(send)
    for line in lines:
        output.write(line)
    sys.stderr.write(f"plugdock: registered with the daemon at {host}:{port}\n")
    server = PluginServer(executor, config, output)
    server.loop = loop
    heartbeat = asyncio.ensure_future(server.heartbeat())
    watchdog = asyncio.ensure_future(server.watchdog())
    first = True
    registered_at = loop.time()
    try:
        async for item in read_lines(reader, server.max_line):
            if isinstance(item, bytes):
                if first and not item.lstrip().startswith(b"{"):
                    raise RemoteRejected(item.decode("utf-8", errors="replace").strip())
                first = False
                server.feed(item)
            else:
                output.write(event_line(Event.ERROR, None, {"error": str(item), "error_type": "LineTooLong"}))
    except ConnectionError:
        if not first:
            raise
    finally:
        heartbeat.cancel()
        watchdog.cancel()
        writer.close()
    if first and loop.time() - registered_at < REJECT_WINDOW:
        # The daemon answers a bad key with one line and closes; if the close raced ahead of that line,
        # the connection ends before any request: that is a refusal, not a network failure.
        raise RemoteRejected("the daemon closed the connection during registration; check the debug key "
                             "(keys expire) and that remote debugging is enabled on the daemon")
