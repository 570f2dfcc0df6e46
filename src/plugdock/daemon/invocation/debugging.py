"""The remote-debugging server: plugins started by their authors connect over TCP and appear installed.

A plugin (``plugdock debug`` or the official SDK with ``INSTALL_METHOD=remote``) sends a handshake with
a debug key issued per tenant, its declarations and assets, then ``end``; it is then installed for the
key's tenant with runtime type ``remote`` until it disconnects. Refusals are one plain-text line, then
the connection closes, as the official daemon does.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import json
import socket
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import delete, select

from plugdock.daemon.plugins.supervisor import Launch, PluginInstance
from plugdock.daemon.state.logbook import daemon_line
from plugdock.daemon.state.models import Installation, PluginRecord
from plugdock.errors import PlugdockError
from plugdock.schema.manifest import PluginManifest
from plugdock.schema.model_templates import resolve_model_declaration

if TYPE_CHECKING:
    from plugdock.daemon.plugins.installer import Installer
    from plugdock.daemon.plugins.supervisor import BackwardsHandler, Supervisor
    from plugdock.daemon.settings import Settings
    from plugdock.daemon.state.db import Database

KEY_TTL = 2 * 60 * 60
MAX_ASSETS = 50 * 1024 * 1024
REMOTE = 2  # PluginRecord.installed value of a connected debugging plugin
DECLARATION_KINDS = {"tool_declaration": "tool", "model_declaration": "model", "endpoint_declaration": "endpoint",
                     "agent_strategy_declaration": "agent_strategy", "datasource_declaration": "datasource",
                     "trigger_declaration": "trigger"}


class Refused(Exception):
    """Registration refused; the message is the line the plugin receives."""


class PortUnavailable(PlugdockError):
    code = "port_unavailable"


def listening_socket(host: str, port: int, what: str, remedy: str) -> socket.socket:
    """A listening TCP socket on host:port, or one error saying what could not listen and how to fix it."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        sock = socket.create_server((host, port), family=family, backlog=100)
    except OSError as exc:
        reason = "the port is taken" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise PortUnavailable(f"cannot listen for {what} on {host}:{port} ({reason}): {remedy}") from None
    sock.setblocking(False)
    return sock


def bind_debug_port(settings: Settings) -> socket.socket:
    """The remote-debugging server's socket, bound before the daemon starts (5003, the default, is also
    the official daemon's, so the two on one host collide)."""
    return listening_socket(settings.remote_installing_host, settings.remote_installing_port, "remote debugging",
                            "set PLUGIN_REMOTE_INSTALLING_PORT (or --debug-port) to a free port, or "
                            "PLUGIN_REMOTE_INSTALLING_ENABLED=false (or --no-debug) to run without remote debugging")


def _remaining(deadline: float) -> float:
    return max(deadline - asyncio.get_running_loop().time(), 0.001)


@dataclass
class RemoteInstance(PluginInstance):
    writer: asyncio.StreamWriter | None = None
    restartable = False

    def alive(self) -> bool:
        return self.state == "ready" and self.writer is not None and not self.writer.is_closing()

    async def send(self, line: bytes) -> None:
        if not self.alive():
            from plugdock.daemon.plugins.supervisor import PluginUnavailable

            raise PluginUnavailable(f"debugging plugin {self.launch.plugin_id} has disconnected")
        assert self.writer is not None
        self.writer.write(line)
        await self.writer.drain()

    async def stop(self, grace: float = 0.0) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.close()
        self.state = "stopped"
        self.end_sessions("ConnectionClosedError", "Connection closed unexpectedly")


class DebugServer:
    def __init__(self, settings: Settings, db: Database, supervisor: Supervisor, installer: Installer,
                 on_backwards: BackwardsHandler) -> None:
        self.settings = settings
        self.db = db
        self.supervisor = supervisor
        self.installer = installer
        self.on_backwards = on_backwards
        self.keys: dict[str, tuple[str, float]] = {}
        self.connections = 0
        self.per_tenant: dict[str, int] = {}
        self.server: asyncio.Server | None = None
        self.port = 0

    def issue_key(self, tenant: str) -> str:
        now = time.time()
        for key, (owner, expires) in list(self.keys.items()):
            if expires < now:
                del self.keys[key]
            elif owner == tenant:
                self.keys[key] = (owner, now + KEY_TTL)  # fetching a key refreshes it
                return key
        key = str(uuid.uuid4())
        self.keys[key] = (tenant, now + KEY_TTL)
        return key

    async def start(self) -> None:
        self.cleanup_stale()
        # the socket `plugdock serve` bound, else one of our own (embedded daemons, tests)
        sock = self.settings.remote_installing_socket or bind_debug_port(self.settings)
        self.settings.remote_installing_socket = None  # a stopped server closes it: never hand it out twice
        self.server = await asyncio.start_server(self.handle, sock=sock, limit=self.settings.max_stdout_line + 1)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def cleanup_stale(self) -> None:
        """Debugging plugins do not survive a daemon restart: forget any a crash left behind."""
        with self.db.session() as s:
            stale = list(s.execute(select(PluginRecord.unique_identifier)
                                   .where(PluginRecord.installed == REMOTE)).scalars())
            if stale:
                s.execute(delete(Installation).where(Installation.unique_identifier.in_(stale)))
                s.execute(delete(PluginRecord).where(PluginRecord.installed == REMOTE))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One debugging connection, counted against the caps until it ends however it ends (a reset
        mid-handshake once left its slot taken for good, and 256 of them closed the port)."""
        counted_tenant: str | None = None
        self.connections += 1
        try:
            if self.connections > self.settings.remote_installing_max_conn:
                raise Refused(f"too many debugging connections (limit {self.settings.remote_installing_max_conn}, "
                              "PLUGIN_REMOTE_INSTALLING_MAX_CONN)")
            # One deadline for the whole exchange up to `end`: a client dribbling a line at a time within
            # each line's timeout would otherwise hold its slot forever.
            deadline = asyncio.get_running_loop().time() + self.settings.remote_installing_timeout
            tenant = await self._handshake(reader, deadline)
            if self.per_tenant.get(tenant, 0) >= self.settings.remote_installing_max_per_tenant:
                raise Refused("too many debugging plugins for this tenant "
                              f"(limit {self.settings.remote_installing_max_per_tenant})")
            self.per_tenant[tenant] = self.per_tenant.get(tenant, 0) + 1
            counted_tenant = tenant
            declaration, assets = await self._registration(reader, deadline)
            identifier = self._register(tenant, declaration, assets)
            await self._serve(identifier, tenant, declaration, reader, writer)
        except Refused as exc:
            await self._refuse(writer, str(exc))
        except (OSError, asyncio.IncompleteReadError):
            pass  # the plugin went away (Ctrl-C, a reset, a dead peer): nothing to answer, nothing to print
        except Exception as exc:  # one line, never a traceback, for whatever else a going connection raises
            daemon_line(f"plugdock: debugging connection ended: {type(exc).__name__}: {exc}")
        finally:
            writer.close()
            if counted_tenant is not None:
                self.per_tenant[counted_tenant] -= 1
                if self.per_tenant[counted_tenant] <= 0:
                    del self.per_tenant[counted_tenant]
            self.connections -= 1

    async def _serve(self, identifier: str, tenant: str, declaration: dict[str, Any], reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        """Serve a registered plugin until it disconnects, then forget it."""
        instance = RemoteInstance(Launch(identifier, declaration["_plugin_id"], self.settings.home,
                                         self.settings.home, "", declaration), self.settings,
                                  self.on_backwards, writer=writer)
        instance.state = "ready"
        instance.last_output = time.monotonic()
        instance.logs.append(f"[plugdock] debugging plugin connected for tenant {tenant}")
        self.supervisor.instances[identifier] = instance
        daemon_line(f"plugdock: debugging plugin {declaration['_plugin_id']} connected for tenant {tenant}")
        try:
            await instance.read_protocol(reader)
            daemon_line(f"plugdock: debugging plugin {declaration['_plugin_id']} disconnected")
        finally:
            await instance.stop()
            self.supervisor.instances.pop(identifier, None)
            self._unregister(identifier)

    async def _handshake(self, reader: asyncio.StreamReader, deadline: float) -> str:
        timeout = self.settings.remote_installing_timeout
        try:
            line = await asyncio.wait_for(self._handshake_line(reader), _remaining(deadline))
        except TimeoutError:
            raise Refused(f"handshake failed, no handshake within {timeout} s "
                          "(PLUGDOCK_REMOTE_INSTALLING_TIMEOUT)") from None
        try:
            message = json.loads(line)
            key = message["data"]["key"] if message.get("type") == "handshake" else None
        except (ValueError, TypeError, KeyError, AttributeError):
            raise Refused("handshake failed, expected {\"type\": \"handshake\", \"data\": {\"key\": ...}}") from None
        owner = self.keys.get(str(key))
        if owner is None or owner[1] < time.time():
            raise Refused("handshake failed, invalid key")
        return owner[0]

    async def _handshake_line(self, reader: asyncio.StreamReader) -> bytes:
        """The first line, read before any key is known, so never more than its cap: the connection's
        reader allows protocol lines up to PLUGIN_RUNTIME_MAX_BUFFER_SIZE, and 40 parked 5 MiB first lines
        once held 200 MiB. Read byte by byte (no suspension while bytes are buffered) so that nothing after
        the newline is taken from the registration that follows."""
        cap = self.settings.remote_installing_max_handshake
        line = bytearray()
        while len(line) <= cap:
            byte = await reader.read(1)
            if not byte:
                raise Refused("handshake failed, the connection closed before the handshake line ended")
            line += byte
            if byte == b"\n":
                return bytes(line)
        raise Refused(f"handshake failed, the handshake line is over the {cap}-byte limit "
                      "(PLUGDOCK_REMOTE_INSTALLING_MAX_HANDSHAKE)")

    async def _registration(self, reader: asyncio.StreamReader,
                            deadline: float) -> tuple[dict[str, Any], dict[str, bytes]]:
        manifest: dict[str, Any] | None = None
        providers: dict[str, Any] = {}
        assets: dict[str, bytearray] = {}
        total = 0
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), _remaining(deadline))
            except TimeoutError:
                raise Refused(f"registration stalled: not finished within {self.settings.remote_installing_timeout}"
                              " s of connecting (PLUGDOCK_REMOTE_INSTALLING_TIMEOUT)") from None
            except (asyncio.LimitOverrunError, ValueError):
                raise Refused("registration failed, a line is over the size limit") from None
            if not line:
                raise Refused("registration failed, the connection closed before end")
            if not line.strip():
                continue
            try:
                message = json.loads(line)
                kind, data = message["type"], message["data"]
            except (ValueError, TypeError, KeyError):
                raise Refused("registration failed, a line is not a {\"type\", \"data\"} JSON object") from None
            if kind == "manifest_declaration":
                if manifest is not None or not isinstance(data, dict):
                    raise Refused("registration failed, manifest_declaration must be one object, sent once")
                manifest = data
            elif kind in DECLARATION_KINDS:
                if DECLARATION_KINDS[kind] in providers or not isinstance(data, list) or not data:
                    raise Refused(f"registration failed, {kind} must be a non-empty list, sent once")
                providers[DECLARATION_KINDS[kind]] = data[0]
            elif kind == "asset_chunk":
                chunk = base64.b64decode(str(data.get("data", "")))
                total += len(chunk)
                if total > MAX_ASSETS:
                    raise Refused(f"registration failed, assets exceed {MAX_ASSETS} bytes")
                assets.setdefault(str(data.get("filename")), bytearray()).extend(chunk)
            elif kind == "end":
                break
            else:
                raise Refused(f"registration failed, unknown message type {kind!r}")
        if manifest is None:
            raise Refused("registration failed, no manifest_declaration was sent")
        if not providers:
            raise Refused("registration failed, at least one provider declaration is required")
        try:
            parsed = PluginManifest.model_validate(manifest)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise Refused(f"registration failed, invalid manifest: {where}: {first['msg']}") from None
        # resolved as the official daemon resolves what a debugging plugin sends (use_template, fetch_from)
        declaration = resolve_model_declaration({**manifest, **providers, "_plugin_id": parsed.plugin_id})
        return declaration, {k: bytes(v) for k, v in assets.items()}

    def _register(self, tenant: str, declaration: dict[str, Any], assets: dict[str, bytes]) -> str:
        plugin_id = declaration["_plugin_id"]
        public = {k: v for k, v in declaration.items() if k != "_plugin_id"}
        checksum = hashlib.sha256(json.dumps(public, sort_keys=True).encode() + tenant.encode()).hexdigest()
        identifier = f"{plugin_id}:{public.get('version')}@{checksum}"
        self.installer._remap_assets(public, assets)
        public["verified"] = False
        with self.db.session() as s:
            existing = s.execute(select(Installation).where(Installation.tenant_id == tenant,
                                                            Installation.plugin_id == plugin_id)).scalar_one_or_none()
            if existing is not None:
                raise Refused(f"plugin {plugin_id} is already installed for this tenant ({existing.runtime_type}); "
                              "uninstall it to debug it")
            s.merge(PluginRecord(unique_identifier=identifier, plugin_id=plugin_id, declaration=public,
                                 installed=REMOTE))
            s.add(Installation(tenant_id=tenant, plugin_id=plugin_id, unique_identifier=identifier,
                               runtime_type="remote", source="remote", meta={}))
        declaration["_identifier"] = identifier
        return identifier

    def _unregister(self, identifier: str) -> None:
        with self.db.session() as s:
            s.execute(delete(Installation).where(Installation.unique_identifier == identifier))
            s.execute(delete(PluginRecord).where(PluginRecord.unique_identifier == identifier,
                                                 PluginRecord.installed == REMOTE))

    @staticmethod
    async def _refuse(writer: asyncio.StreamWriter, message: str) -> None:
        try:
            writer.write(message.encode() + b"\n")
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
