"""Plugin processes: launch, watch, route, restart, stop — and never leave one behind.

Each installed package runs as ``<env python> -m <entrypoint>`` in its own folder, as the official
daemon runs it, but with an allow-listed environment (no daemon secrets), its own process group,
a parent-death signal so it dies with the daemon even when the daemon is SIGKILLed, and the
containment of :mod:`plugdock.daemon.plugins.sandbox` (own uid, limits, straggler hunting).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plugdock.daemon.plugins.sandbox import (
    MARKER,
    Confinement,
    Sandbox,
    child_setup,
    describe_exit,
    limit_hint,
    memory_note,
    resident_memory,
)
from plugdock.daemon.plugins.sandbox_child import ChildSetupError
from plugdock.daemon.plugins.sessions import Waiting
from plugdock.daemon.settings import Settings
from plugdock.daemon.state.logbook import LogLines
from plugdock.errors import PlugdockError
from plugdock.protocol.messages import request_line

BackwardsHandler = Callable[["PluginInstance", str, dict[str, Any]], Awaitable[None]]
SAFE_ENV = ("LANG", "LC_ALL", "TZ", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
            "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR")


class PluginUnavailable(PlugdockError):
    """The plugin could not be started or stopped answering; the message says why, with its last output."""

    code = "PluginDaemonInvokeError"


@dataclass
class Launch:
    unique_identifier: str
    plugin_id: str
    directory: Path
    python: Path
    entrypoint: str
    manifest: dict[str, Any]


@dataclass
class PluginInstance:
    launch: Launch
    settings: Settings
    on_backwards: BackwardsHandler
    state: str = "stopped"
    error: str = ""
    proc: asyncio.subprocess.Process | None = None
    sessions: dict[str, Waiting] = field(default_factory=dict)
    logs: collections.deque[str] = field(default_factory=lambda: LogLines(maxlen=1000))  # stamped lines
    last_output: float = 0.0
    last_used: float = field(default_factory=time.monotonic)
    restarts: int = 0
    sandbox: Sandbox | None = None
    confinement: Confinement | None = None
    _ready: asyncio.Event | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _backwards: set[asyncio.Task[None]] = field(default_factory=set)

    # -- lifecycle ----------------------------------------------------------------------------------
    def private_folder(self) -> Path:
        """HOME and TMPDIR of the plugin when it has no private tmpfs; removed with the package."""
        return self.settings.home / "runtime" / self.launch.unique_identifier.replace("/", "_").replace(":", "_")

    def environment(self, confinement: Confinement | None = None) -> dict[str, str]:
        """The allow-list: what the protocol needs, a private home and temp folder, and what the operator names."""
        env_bin = str(self.launch.python.parent)
        private = self.private_folder()
        if self.sandbox is not None:
            home, tmp = self.sandbox.private_paths(confinement, private)
        else:
            (private / "tmp").mkdir(parents=True, exist_ok=True)
            home, tmp = private, private / "tmp"
        env = {"PATH": f"{env_bin}:/usr/local/bin:/usr/bin:/bin", "INSTALL_METHOD": "local",
               "HOME": str(home), "TMPDIR": str(tmp), "PYTHONDONTWRITEBYTECODE": "1",
               "PLUGIN_RUNTIME_MAX_BUFFER_SIZE": str(self.settings.max_stdout_line)}
        if confinement is not None:
            env[MARKER] = confinement.marker
            if confinement.level == "process":
                env["MALLOC_ARENA_MAX"] = "2"  # fewer malloc arenas: RSS closer to what the plugin really uses
        library = self.sandbox.library_path(self.launch.python) if self.sandbox is not None else None
        if library:
            env["LD_LIBRARY_PATH"] = library
        for name in (*SAFE_ENV, *self.settings.pass_env):
            if name in os.environ:
                env[name] = os.environ[name]
        return env

    async def start(self) -> None:
        self.state, self.error = "starting", ""
        self.last_used = time.monotonic()
        self._ready = asyncio.Event()
        self.logs.append(f"[plugdock] starting {self.launch.unique_identifier}")
        conf = None
        if self.sandbox is not None:
            conf = self.sandbox.confinement(self.launch.unique_identifier, self.launch.manifest)
        self.confinement = conf
        preexec = self.sandbox.preexec(conf) if self.sandbox is not None else child_setup(None)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                str(self.launch.python), "-m", self.launch.entrypoint, cwd=self.launch.directory,
                env=self.environment(conf), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True, preexec_fn=preexec,
                limit=self.settings.max_stdout_line + 1,
            )
        except (OSError, ChildSetupError, subprocess.SubprocessError, PlugdockError) as exc:
            self._fail(f"could not launch {self.launch.python}: {exc}")
            raise PluginUnavailable(self.error) from exc
        self.last_output = time.monotonic()
        self._tasks = [asyncio.ensure_future(self._read_stdout()), asyncio.ensure_future(self._read_stderr()),
                       asyncio.ensure_future(self._watch_exit())]
        try:
            await asyncio.wait_for(self._ready.wait(), timeout=self.settings.launch_timeout)
        except TimeoutError:
            self._fail(f"no heartbeat within {self.settings.launch_timeout} s of launch")
            await self.stop()
            raise PluginUnavailable(self._describe()) from None
        if self.state != "ready":
            raise PluginUnavailable(self._describe())
        self.last_used = time.monotonic()  # a fresh start is a use: the idle reaper must not take it first

    def _describe(self) -> str:
        tail = " | ".join(list(self.logs)[-5:])
        return f"plugin {self.launch.unique_identifier} is unavailable: {self.error}" + (
            f"; last output: {tail}" if tail else "")

    def _fail(self, reason: str) -> None:
        self.state, self.error = "failed", reason
        self.logs.append(f"[plugdock] {reason}")
        self.end_sessions("PluginUnavailableError", self._describe())
        if self._ready is not None:
            self._ready.set()

    async def stop(self, grace: float = 2.0) -> None:
        proc = self.proc
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if proc is not None:  # leftover children of the plugin (its process group) go too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            self.kill_stragglers()
        self.proc = None
        if self.state != "failed":
            self.state = "stopped"
        self.end_sessions("PluginUnavailableError", "the plugin was stopped")

    def kill_stragglers(self) -> None:
        """Children that left the process group (setsid, double fork, fork-and-exit loops) are in its cgroup,
        run as its uid or carry its marker: kill them all."""
        if self.sandbox is not None and self.confinement is not None:
            self.sandbox.kill_all(self.confinement)

    def over_memory(self) -> str | None:
        """Why the plugin must be stopped for its memory use, if it must (only where no kernel limit holds)."""
        conf = self.confinement
        if conf is None or conf.memory is None or conf.memory_in_kernel or self.proc is None \
                or self.proc.returncode is not None:
            return None
        used = resident_memory(self.proc.pid)
        if used is None or used <= conf.memory:
            return None
        return (f"the plugin used {used // 2**20} MiB of memory, over its limit of {conf.memory // 2**20} MiB "
                f"({memory_note(conf)}); it was stopped")

    def end_sessions(self, error_type: str, message: str) -> None:
        """End every session in flight with one named error (after what its caller has not read yet)."""
        for sid, waiting in list(self.sessions.items()):
            waiting.end({"type": "error", "data": {"error_type": error_type, "message": message, "args": {}}})
            self.sessions.pop(sid, None)

    # -- output -------------------------------------------------------------------------------------
    async def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        await self.read_protocol(self.proc.stdout)

    async def read_protocol(self, stream: asyncio.StreamReader) -> None:
        """Read the plugin's protocol lines until the stream ends (stdout of a process, or a debug socket)."""
        while True:
            try:
                raw = await stream.readuntil(b"\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            except asyncio.LimitOverrunError:
                self._fail(f"the plugin wrote a line over the {self.settings.max_stdout_line}-byte limit "
                           "(PLUGIN_RUNTIME_MAX_BUFFER_SIZE); it was stopped")
                await self.stop(grace=0.5)
                return
            await self.handle_line(raw)

    async def handle_line(self, raw: bytes) -> None:
        self.last_output = time.monotonic()
        line = raw.strip()
        if not line:
            return
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            self.logs.append(f"[stdout] {line[:500].decode('utf-8', 'replace')}")
            return
        if isinstance(message, dict):
            await self._handle_message(message, len(raw))

    async def _handle_message(self, message: dict[str, Any], size: int = 0) -> None:
        event = message.get("event")
        if event == "heartbeat":
            if self.state == "starting":
                self.state = "ready"
                self.logs.append("[plugdock] ready")
                assert self._ready is not None
                self._ready.set()
        elif event == "log":
            data = message.get("data") or {}
            self.logs.append(f"[{data.get('level', 'INFO')}] {data.get('message', '')}")
        elif event == "error":
            self.logs.append(f"[error] {json.dumps(message.get('data'))[:500]}")
        elif event == "session":
            await self._route(message, size)

    async def _route(self, message: dict[str, Any], size: int = 0) -> None:
        session_id = str(message.get("session_id"))
        data = message.get("data") or {}
        waiting = self.sessions.get(session_id)
        if waiting is None:
            return
        if data.get("type") == "invoke":
            task = asyncio.ensure_future(self.on_backwards(self, session_id, data.get("data") or {}))
            self._backwards.add(task)
            task.add_done_callback(self._backwards.discard)
            return
        if data.get("type") == "error" and isinstance(data.get("data"), dict):
            error = data["data"]
            error["message"] = limit_hint(str(error.get("message", "")), self.confinement)
        if not await self._room_for(session_id, waiting):
            return
        waiting.put(data, size)
        if data.get("type") == "end":
            self.sessions.pop(session_id, None)

    async def _room_for(self, session_id: str, waiting: Waiting) -> bool:
        """Backpressure: while the caller has more than the session buffer waiting, stop reading the plugin
        (its writes then block on the pipe); a caller that reads nothing for the stall limit is cut."""
        limit = self.settings.session_buffer
        while waiting.queued > limit and not waiting.closed:
            waiting.drained.clear()
            try:
                await asyncio.wait_for(waiting.drained.wait(), timeout=self.settings.session_stall_timeout)
            except TimeoutError:
                waiting.cut({"type": "error", "data": {"error_type": "SessionStalledError", "message": (
                    f"the caller read nothing for {self.settings.session_stall_timeout} s while over "
                    f"{limit} bytes of the plugin's output waited (PLUGDOCK_SESSION_BUFFER, "
                    "PLUGDOCK_SESSION_STALL_TIMEOUT); the session was cut"), "args": {}}})
                self.sessions.pop(session_id, None)
                self.logs.append(f"[plugdock] session {session_id} cut: its caller stopped reading")
                return False
        return not waiting.closed

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.last_output = time.monotonic()
            text = raw.decode("utf-8", "replace").rstrip()
            if text:
                self.logs.append(f"[stderr] {text[:1000]}")

    async def _watch_exit(self) -> None:
        assert self.proc is not None
        code = await self.proc.wait()
        if self.state in ("starting", "ready"):
            await asyncio.sleep(0.05)  # let the stderr reader take the last lines, which may name the cause
            self._fail(describe_exit(code, self.confinement, list(self.logs)[-20:]))
            self.kill_stragglers()

    def alive(self) -> bool:
        return self.state == "ready" and self.proc is not None and self.proc.returncode is None

    restartable = True

    # -- requests ------------------------------------------------------------------------------------
    async def send(self, line: bytes) -> None:
        if self.proc is None or self.proc.stdin is None or self.proc.returncode is not None:
            raise PluginUnavailable(self._describe())
        self.proc.stdin.write(line)
        await self.proc.stdin.drain()

    async def request(self, tenant_id: str, data: dict[str, Any], envelope: dict[str, Any], *, depth: int = 0,
                      deadline: float = float("inf")) -> AsyncIterator[dict[str, Any]]:
        """Send one request; yield its session messages (``stream``/``error``), ending at ``end``."""
        session_id = str(uuid.uuid4())
        waiting = Waiting(asyncio.Queue(), tenant_id, str(data.get("type")), str(data.get("user_id", "")), depth,
                           deadline)
        self.sessions[session_id] = waiting
        self.last_used = time.monotonic()
        try:
            await self.send(request_line(session_id, data, **envelope))
            while True:
                message = await waiting.get()
                if message is None or message.get("type") == "end":
                    return
                yield message
        finally:
            waiting.closed = True
            waiting.drained.set()  # a reader held back for this caller goes on
            self.sessions.pop(session_id, None)
            self.last_used = time.monotonic()


class Supervisor:
    """Owns every plugin process of the daemon."""

    def __init__(self, settings: Settings, on_backwards: BackwardsHandler, sandbox: Sandbox | None = None) -> None:
        self.settings = settings
        self.on_backwards = on_backwards
        self.sandbox = sandbox
        self.instances: dict[str, PluginInstance] = {}
        self._launches = asyncio.Semaphore(settings.max_concurrent_launches)
        self._locks: dict[str, asyncio.Lock] = {}
        self._watch: asyncio.Task[None] | None = None

    def register(self, launch: Launch) -> PluginInstance:
        instance = self.instances.get(launch.unique_identifier)
        if instance is None:
            instance = PluginInstance(launch, self.settings, self.on_backwards, sandbox=self.sandbox)
            self.instances[launch.unique_identifier] = instance
        return instance

    async def ready(self, unique_identifier: str) -> PluginInstance:
        """The running instance, started (or restarted after a crash) if needed."""
        instance = self.instances.get(unique_identifier)
        if instance is None:
            raise PluginUnavailable(f"plugin {unique_identifier} is not installed on this daemon")
        if instance.alive():
            return instance
        if not instance.restartable:
            raise PluginUnavailable(instance._describe())
        lock = self._locks.setdefault(unique_identifier, asyncio.Lock())
        async with lock:
            if self.instances.get(unique_identifier) is not instance:  # removed while this caller waited
                raise PluginUnavailable(f"plugin {unique_identifier} is not installed on this daemon")
            if instance.alive():
                return instance
            if instance.restarts and instance.state == "failed":
                delay = min(60.0, 0.5 * 2 ** min(instance.restarts, 7))
                if time.monotonic() - instance.last_used < delay:
                    raise PluginUnavailable(f"{instance._describe()} (restart backoff: retrying in {delay:.0f} s)")
            await instance.stop(grace=0.5)
            async with self._launches:
                try:
                    await instance.start()
                    instance.restarts = 0
                except PluginUnavailable:
                    instance.restarts += 1
                    instance.last_used = time.monotonic()
                    raise
        return instance

    async def remove(self, unique_identifier: str) -> None:
        """Stop the package's process for good and drop its private folder.

        Taken under the start lock, so a start in flight for a caller finishes first and is then stopped,
        instead of launching a process after the stop that nothing would ever stop."""
        lock = self._locks.setdefault(unique_identifier, asyncio.Lock())
        async with lock:
            instance = self.instances.pop(unique_identifier, None)
            if instance is not None:
                await instance.stop()
                await asyncio.to_thread(shutil.rmtree, instance.private_folder(), True)
        self._locks.pop(unique_identifier, None)

    def start_watchdog(self) -> None:
        self._watch = asyncio.ensure_future(self._watchdog())

    async def _watchdog(self) -> None:
        """Kill plugins that went silent or outgrew their memory limit, and stop idle ones."""
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for instance in list(self.instances.values()):
                if instance.state != "ready" or not instance.restartable:
                    continue
                starting = self._locks.get(instance.launch.unique_identifier)
                if starting is not None and starting.locked():  # being (re)started for a caller right now
                    continue
                too_big = instance.over_memory()
                if too_big is not None:
                    instance._fail(too_big)
                    await instance.stop(grace=0)
                elif now - instance.last_output > self.settings.heartbeat_timeout:
                    instance._fail(f"no output or heartbeat for {self.settings.heartbeat_timeout} s; the plugin "
                                   "was killed")
                    await instance.stop(grace=0.5)
                elif (self.settings.idle_stop_after and not instance.sessions
                      and now - instance.last_used > self.settings.idle_stop_after):
                    instance.logs.append(f"[plugdock] idle for {self.settings.idle_stop_after} s; stopping")
                    await instance.stop()

    async def shutdown(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await asyncio.gather(*(i.stop() for i in self.instances.values()), return_exceptions=True)
