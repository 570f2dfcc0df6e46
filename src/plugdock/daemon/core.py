"""The daemon's composition root: every service it owns, created at start-up and closed at shutdown.

No HTTP here: :mod:`plugdock.daemon.http` builds the API on top of a :class:`Daemon`, and the services
below it (state, plugins, invocation) receive what they use, never the whole daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

from plugdock.daemon.invocation.backwards import BackwardsRouter
from plugdock.daemon.invocation.debugging import DebugServer
from plugdock.daemon.plugins.environments import EnvironmentManager
from plugdock.daemon.plugins.installer import Installer
from plugdock.daemon.plugins.network import NetworkPolicy, policy_for
from plugdock.daemon.plugins.sandbox import Sandbox, home_tag
from plugdock.daemon.plugins.supervisor import PluginUnavailable, Supervisor
from plugdock.daemon.settings import Settings
from plugdock.daemon.state.credentials import CredentialStore
from plugdock.daemon.state.db import Database
from plugdock.daemon.state.installations import InstallationIndex
from plugdock.daemon.state.kvstore import KVStore
from plugdock.daemon.state.plugin_users import PluginUsers
from plugdock.daemon.state.secrets_box import SecretBox
from plugdock.errors import PlugdockError


class BootStart:
    """PLUGDOCK_START_PLUGINS=boot: every installed plugin started in the background, at most
    PLUGDOCK_MAX_CONCURRENT_LAUNCHES at once (the supervisor's bound), counted for /health/check."""

    def __init__(self, supervisor: Supervisor, identifiers: list[str]) -> None:
        self.total = len(identifiers)
        self.started = 0
        self.failed = 0
        self._task = asyncio.ensure_future(self._run(supervisor, identifiers))

    @property
    def done(self) -> bool:
        return self._task.done()

    def progress(self) -> dict[str, int] | None:
        """Counts while plugins are still starting; None once every one has started or failed."""
        if self.done:
            return None
        return {"plugins": self.total, "started": self.started, "failed": self.failed}

    async def _run(self, supervisor: Supervisor, identifiers: list[str]) -> None:
        async def one(identifier: str) -> None:
            try:
                await supervisor.ready(identifier)
            except PluginUnavailable:  # reported in its logs, and to the first caller
                self.failed += 1
                return
            except Exception as exc:  # one broken plugin never stops the others
                sys.stderr.write(f"plugdock: could not start {identifier} at boot: {exc}\n")
                self.failed += 1
                return
            self.started += 1

        await asyncio.gather(*(one(i) for i in identifiers))
        if self.total:
            sys.stderr.write(f"plugdock: started {self.started} of {self.total} plugin(s) at boot"
                             + (f", {self.failed} failed (see plugdock logs)" if self.failed else "") + "\n")

    async def cancel(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class Daemon:
    """Everything the daemon owns, created at start-up and closed at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.database_url)
        self.kv = KVStore(self.db, max_keys=settings.storage_max_keys)
        self.installations = InstallationIndex(self.db)
        self.box = SecretBox(settings.home)
        self.credentials = CredentialStore(self.db, self.box)
        users = PluginUsers(self.db, settings.sandbox_uid_base, home_tag(settings.home)) \
            if settings.sandbox == "process" and os.geteuid() == 0 else None
        self.sandbox = Sandbox(settings.home, settings.sandbox, settings.sandbox_uid_base,
                               settings.plugin_max_open_files, settings.plugin_max_processes, users=users,
                               tmp_size=settings.plugin_tmp_size, cpu=settings.plugin_cpu,
                               min_memory=settings.plugin_min_memory)
        self.sandbox.lock_down_home()
        # owner-matched rules need plugins under uids of their own
        self.network: NetworkPolicy | None = policy_for(settings, self.sandbox.home_tag) \
            if self.sandbox.separate_users else None
        self.envs = EnvironmentManager(settings.home, self.db, settings.uv_index_url, self.sandbox)
        # plugins call back through the router, which calls plugins: the supervisor gets the router's handler late
        self.supervisor = Supervisor(settings, lambda *call: self.backwards.handle(*call), self.sandbox)
        self.backwards = BackwardsRouter(settings, self.db, self.kv, self.credentials, self.supervisor)
        self.installer = Installer(settings, self.db, self.envs, self.supervisor)
        self.debugging = DebugServer(settings, self.db, self.supervisor, self.installer, self.backwards.handle) \
            if settings.remote_installing_enabled else None
        self.active_requests = 0
        self.boot: BootStart | None = None

    async def start(self) -> None:
        if self.network is not None:  # before the report, which says whether it holds, and before any plugin
            self.network.install()
            self.sandbox.network = self.network
        for line in self.sandbox.report():  # what holds, by what: the operator sees it before any plugin runs
            sys.stderr.write(f"plugdock: {line}\n")
        left = self.sandbox.kill_leftovers_of_previous_run()
        if left:
            sys.stderr.write(f"plugdock: killed {left} plugin process(es) a previous run of this home left behind\n")
        swept = self.installer.sweep_staging()
        if swept:
            sys.stderr.write(f"plugdock: removed {len(swept)} half-written folder(s) an interrupted run left\n")
        interrupted = self.installer.interrupted_tasks()
        if interrupted:
            sys.stderr.write(f"plugdock: {interrupted} install task(s) were interrupted by a stop; marked failed\n")
        orphans = await self.installer.release_orphans()
        if orphans:
            sys.stderr.write(f"plugdock: removed {len(orphans)} package(s) an interrupted uninstall or upgrade left: "
                             f"{', '.join(orphans)}\n")
        self.installer.restore()
        self.supervisor.start_watchdog()
        if self.debugging is not None:
            await self.debugging.start()
            if self.network is not None:  # its port is known only now when it was 0
                self.network.protect(self.settings.remote_installing_host, self.debugging.port,
                                     "the daemon's remote-debugging port")
            sys.stderr.write(f"plugdock: remote debugging on {self.settings.remote_installing_host}:"
                             f"{self.debugging.port}\n")
        for path in self.settings.preinstall:
            await self.preinstall(Path(path))
        if self.settings.start_plugins == "boot":  # in the background: the API answers meanwhile
            self.boot = BootStart(self.supervisor, list(self.supervisor.instances))

    async def preinstall(self, path: Path, tenant: str = "default") -> None:
        """Install plugin folders (or a folder of them) or packages the operator named at start-up.

        The operator's own files: no signature is required, but every other check applies.
        """
        from plugdock.packaging.build import build_package, is_bundle

        folders = [path] if (path / "manifest.yaml").exists() or path.is_file() else sorted(
            p for p in path.iterdir() if (p / "manifest.yaml").exists())
        for folder in folders:
            if folder.is_dir() and is_bundle(folder):  # its members come from elsewhere: an install of its own
                sys.stderr.write(f"plugdock: skipped {folder}: a bundle is not a plugin; install its members with "
                                 f"`plugdock package {folder} -o {folder.name}.difybndl` and `plugdock install "
                                 f"{folder.name}.difybndl`\n")
                continue
            try:
                data = folder.read_bytes() if folder.is_file() else build_package(folder).data
                decoded = await asyncio.to_thread(self.installer.decode, data, False, True)
                identifier = str(decoded.identifier)
                await self.installer.prepare(identifier)
                await self.installer.install_for_tenant(tenant, identifier, "preinstall", {})
            except PlugdockError as exc:  # one bad folder does not keep the daemon down
                sys.stderr.write(f"plugdock: could not install {folder}: {exc.message}\n")
                continue
            sys.stderr.write(f"plugdock: installed {identifier} for tenant {tenant}\n")

    async def stop(self) -> None:
        if self.boot is not None:
            await self.boot.cancel()
        if self.debugging is not None:
            await self.debugging.stop()
        await self.supervisor.shutdown()
        if self.network is not None:
            self.network.remove()
        self.sandbox.close()
        self.db.close()
