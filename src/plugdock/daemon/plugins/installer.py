"""Packages in, installations out: upload (decode + verify), asynchronous install tasks, upgrade, uninstall.

Every step that can fail names its stage; an install task that a crash interrupted is marked failed on
the next start, never left "running".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from plugdock.daemon.plugins.dependency_files import read_dependencies
from plugdock.daemon.plugins.environments import EnvironmentManager
from plugdock.daemon.plugins.requirements_policy import check_requirements
from plugdock.daemon.plugins.supervisor import Launch, Supervisor
from plugdock.daemon.settings import Settings
from plugdock.daemon.state.blobs import LocalBlobStore
from plugdock.daemon.state.db import Database
from plugdock.daemon.state.models import Installation, InstallTask, PluginRecord
from plugdock.errors import PackageError, PlugdockError
from plugdock.packaging.archive import ArchiveSource, PackageArchive
from plugdock.packaging.checksum import package_checksum
from plugdock.packaging.identifier import PluginIdentifier
from plugdock.schema.declaration import plugin_declaration
from plugdock.schema.model_templates import resolve_model_declaration
from plugdock.schema.plugin import load_plugin


class NotFound(PlugdockError):
    code = "not_found"


@dataclass
class Decoded:
    identifier: PluginIdentifier
    declaration: dict[str, Any]
    verification: dict[str, Any] | None


def _safe_name(identifier: str) -> str:
    return identifier.replace("/", "__").replace(":", "_").replace("@", "_")


class Installer:
    def __init__(self, settings: Settings, db: Database, envs: EnvironmentManager, supervisor: Supervisor) -> None:
        self.settings = settings
        self.db = db
        self.envs = envs
        self.supervisor = supervisor
        self.packages = LocalBlobStore(settings.home / "packages")
        self.assets = LocalBlobStore(settings.home / "assets")
        self.plugins = settings.home / "plugins"
        self.plugins.mkdir(parents=True, exist_ok=True)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- upload ---------------------------------------------------------------------------------------
    def decode(self, data: bytes, verify_signature: bool = False, trusted: bool = False,
               bundle_member: bool = False) -> Decoded:
        """Check a package and remember it; raises with the precise reason it is refused.

        ``trusted`` (the operator's own files, named at start-up) skips the signature policy only;
        ``bundle_member`` adds ENFORCE_LANGGENIUS_PLUGIN_SIGNATURES, as the official bundle upload does.
        """
        archive = PackageArchive.open(data, max_size=self.settings.max_package_size)
        plugin = load_plugin(ArchiveSource(archive))
        if not plugin.ok or plugin.manifest is None:
            details = "; ".join(str(p) for p in plugin.errors[:10])
            raise PackageError(f"the package is not a valid plugin: {details}")
        if plugin.manifest.author and len(plugin.manifest.author) == 36 and plugin.manifest.author.count("-") == 4:
            raise PackageError("the package's author looks like a UUID, which marks remote-debugging plugins")
        verification = self.settings.signature_policy().check(
            archive, not trusted and (verify_signature or self.settings.force_verifying_signature),
            plugin.manifest.author if bundle_member and not trusted else None)
        files = archive.read_all()
        manifest = plugin.manifest
        identifier = PluginIdentifier(manifest.author, manifest.name, manifest.version, package_checksum(files))
        declaration = plugin_declaration(plugin)
        declaration["verified"] = verification is not None
        self._remap_assets(declaration, {n.removeprefix("_assets/"): c for n, c in files if n.startswith("_assets/")})
        self.packages.put(f"{identifier.checksum}.difypkg", data)
        with self.db.session() as s:
            record = s.execute(select(PluginRecord).where(
                PluginRecord.unique_identifier == str(identifier))).scalar_one_or_none()
            if record is None:
                s.add(PluginRecord(unique_identifier=str(identifier), plugin_id=identifier.plugin_id,
                                   declaration=declaration, verification=verification))
        return Decoded(identifier, declaration, verification)

    def _remap_assets(self, declaration: dict[str, Any], assets: dict[str, bytes]) -> None:
        """Store icons and name them by content, as the official daemon does: the host fetches them by id."""
        def remap(name: Any) -> Any:
            if not isinstance(name, str) or name not in assets:
                return name
            asset_id = hashlib.sha256(assets[name] + name.encode()).hexdigest() + Path(name).suffix
            self.assets.put(asset_id, assets[name])
            return asset_id

        for key in ("icon", "icon_dark"):
            declaration[key] = remap(declaration.get(key))
        for kind in ("tool", "agent_strategy", "datasource", "trigger"):
            identity = (declaration.get(kind) or {}).get("identity")
            if isinstance(identity, dict):
                for key in ("icon", "icon_dark"):
                    if key in identity:
                        identity[key] = remap(identity[key])
        model = declaration.get("model") or {}
        for key in ("icon_small", "icon_large", "icon_small_dark", "icon_large_dark"):
            if isinstance(model.get(key), dict):
                model[key] = {lang: remap(value) for lang, value in model[key].items()}

    def asset(self, asset_id: str) -> bytes:
        data = self.assets.get(asset_id)
        if data is None:
            raise NotFound(f"asset {asset_id} not found")
        return data

    def record(self, unique_identifier: str) -> PluginRecord:
        with self.db.session() as s:
            record = s.execute(select(PluginRecord).where(
                PluginRecord.unique_identifier == unique_identifier)).scalar_one_or_none()
        if record is None:
            raise NotFound(f"plugin {unique_identifier} is unknown: upload the package first")
        return record

    # -- install ---------------------------------------------------------------------------------------
    def create_task(self, tenant_id: str, identifiers: list[str], source: str, metas: list[dict[str, Any]],
                    replaces: str | None = None) -> str:
        plugins = []
        for identifier in identifiers:
            record = self.record(identifier)
            decl = record.declaration
            plugins.append({"plugin_unique_identifier": identifier, "plugin_id": record.plugin_id, "status": "pending",
                            "message": "", "labels": decl.get("label", {}), "icon": decl.get("icon", ""),
                            "icon_dark": decl.get("icon_dark", "") or "", "source": source})
        with self.db.session() as s:
            task = InstallTask(tenant_id=tenant_id, status="pending", total_plugins=len(plugins), plugins=plugins)
            s.add(task)
        job = asyncio.ensure_future(self._run_task(task.id, tenant_id, identifiers, source, metas, replaces))
        self._tasks.add(job)
        job.add_done_callback(self._tasks.discard)
        return task.id

    async def _run_task(self, task_id: str, tenant_id: str, identifiers: list[str], source: str,
                        metas: list[dict[str, Any]], replaces: str | None = None) -> None:
        self._update(task_id, status="running")
        failed = False
        for index, identifier in enumerate(identifiers):
            def progress(message: str, index: int = index) -> None:
                self._update_plugin(task_id, index, "running", message)

            try:
                progress("preparing")
                await self.prepare(identifier, progress)
                if replaces is not None:  # an upgrade: the new version must answer before the switch
                    progress("starting the new version")
                    await self.supervisor.ready(identifier)
                meta = metas[index] if index < len(metas) else {}
                await self.install_for_tenant(tenant_id, identifier, source, meta, replaces, progress)
                self._update_plugin(task_id, index, "success", "installed", completed=True)
            except PlugdockError as exc:
                failed = True
                kept = f" ({replaces} is still installed)" if replaces else ""
                self._update_plugin(task_id, index, "failed", exc.message + kept, completed=True)
                await self._release_quietly(identifier)
            except Exception as exc:  # a bug must not leave the task running forever
                failed = True
                self._update_plugin(task_id, index, "failed", f"internal error: {type(exc).__name__}: {exc}",
                                    completed=True)
                await self._release_quietly(identifier)
        self._update(task_id, status="failed" if failed else "success")

    async def prepare(self, unique_identifier: str, progress: Any = None) -> None:
        """Extract the package and build (or reuse) its environment; register it with the supervisor.

        A failure removes the code folder this call extracted: nothing of a failed install stays on disk."""
        directory = self.plugins / _safe_name(unique_identifier)
        existed = directory.exists()
        try:
            await self._prepare(unique_identifier, progress)
        except BaseException:
            if not existed and unique_identifier not in self.supervisor.instances:
                shutil.rmtree(directory, ignore_errors=True)
                shutil.rmtree(directory.with_name(directory.name + ".part"), ignore_errors=True)
            raise

    async def _prepare(self, unique_identifier: str, progress: Any = None) -> None:
        say = progress or (lambda _m: None)
        record = self.record(unique_identifier)
        identifier = PluginIdentifier.parse(unique_identifier)
        directory = self.plugins / _safe_name(unique_identifier)
        if not directory.exists():
            say("extracting the package")
            package = self.packages.get(f"{identifier.checksum}.difypkg")
            if package is None:
                raise NotFound(f"the package of {unique_identifier} is missing from the store: upload it again")
            archive = PackageArchive.open(package, max_size=self.settings.max_package_size)
            staging = directory.with_name(directory.name + ".part")
            shutil.rmtree(staging, ignore_errors=True)
            archive.extract_to(staging)
            if self.envs.sandbox is not None:  # closed to other plugins before it takes its name
                self.envs.sandbox.make_readable(staging)
                self.envs.sandbox.restrict_code(unique_identifier, staging)
            os.replace(staging, directory)
        dependencies = read_dependencies(directory)
        say(f"checking {dependencies.origin}")
        requirements = check_requirements(dependencies.source, directory,
                                          allow_direct_urls=self.settings.allow_direct_urls,
                                          allow_sdists=self.settings.allow_sdists, origin=dependencies.label)
        runner = record.declaration.get("meta", {}).get("runner", {})
        env = await asyncio.to_thread(self.envs.ensure_for_runner, requirements, str(runner.get("version", "")), say)
        with self.db.session() as s:
            row = s.get(PluginRecord, record.id)
            assert row is not None
            row.env_id, row.installed = env.id, 1
        self.register(unique_identifier, record.plugin_id, directory, env.python, record.declaration)

    def register(self, unique_identifier: str, plugin_id: str, directory: Path, python: Path,
                 declaration: dict[str, Any]) -> None:
        entry = str(declaration.get("meta", {}).get("runner", {}).get("entrypoint", "main"))
        if self.envs.sandbox is not None and directory.is_dir():  # folders an earlier build left readable, too
            self.envs.sandbox.restrict_code(unique_identifier, directory)
        self.supervisor.register(Launch(unique_identifier, plugin_id, directory, python, entry, declaration))

    async def install_for_tenant(self, tenant_id: str, identifier: str, source: str, meta: dict[str, Any],
                                 replaces: str | None = None, progress: Any = None) -> None:
        """Switch the tenant to a prepared ``identifier``; the version it replaced (named by the upgrade
        route, or found installed for the tenant) goes at once if nothing else uses it: its process, code
        folder and private folder, so an edit-package-install loop leaves one of each per installation."""
        previous = self._install_for_tenant(tenant_id, identifier, source, meta)
        for old in sorted({o for o in (previous, replaces) if o is not None and o != identifier}):
            if progress is not None:
                progress("stopping the old version")
            await self.release(old)

    def _install_for_tenant(self, tenant_id: str, identifier: str, source: str,
                            meta: dict[str, Any]) -> str | None:
        """Point the tenant's installation of the plugin at ``identifier``; returns the one it replaced."""
        plugin_id = PluginIdentifier.parse(identifier).plugin_id
        with self.db.session() as s:
            existing = s.execute(select(Installation).where(Installation.tenant_id == tenant_id,
                                                            Installation.plugin_id == plugin_id)).scalar_one_or_none()
            if existing is None:
                s.add(Installation(tenant_id=tenant_id, plugin_id=plugin_id, unique_identifier=identifier,
                                   source=source, meta=meta))
                return None
            previous = str(existing.unique_identifier)
            existing.unique_identifier, existing.source, existing.meta = identifier, source, meta
            return previous

    def _update(self, task_id: str, **values: Any) -> None:
        with self.db.session() as s:
            task = s.get(InstallTask, task_id)
            if task is not None:
                for key, value in values.items():
                    setattr(task, key, value)

    def _update_plugin(self, task_id: str, index: int, status: str, message: str, completed: bool = False) -> None:
        with self.db.session() as s:
            task = s.get(InstallTask, task_id)
            if task is None:
                return
            plugins = [dict(p) for p in task.plugins]
            plugins[index].update(status=status, message=message)
            task.plugins = plugins
            if completed:
                task.completed_plugins += 1

    async def upgrade(self, tenant_id: str, original: str, new: str, source: str, meta: dict[str, Any]) -> str:
        """Install the new version, start it and check it answers, then switch the tenant over."""
        with self.db.session() as s:
            current = s.execute(select(Installation).where(Installation.tenant_id == tenant_id,
                                                           Installation.unique_identifier == original)
                                ).scalar_one_or_none()
        if current is None:
            raise NotFound(f"plugin {original} is not installed for this tenant")
        if PluginIdentifier.parse(original).plugin_id != PluginIdentifier.parse(new).plugin_id:
            raise PackageError(f"cannot upgrade {original} to {new}: they are different plugins")
        return self.create_task(tenant_id, [new], source, [meta], replaces=original)

    def sweep_staging(self) -> list[str]:
        """Remove half-written folders a crash left behind (extractions, environment builds, mirrors); what is
        complete was moved into place by one rename, so anything still staged is garbage (called at start-up)."""
        removed = []
        for root, suffix in ((self.plugins, ".part"), (self.envs.root, ".building"),
                             (self.settings.home / "interpreters", ".part")):
            for staged in root.glob(f"*{suffix}") if root.is_dir() else ():
                shutil.rmtree(staged, ignore_errors=True)
                removed.append(str(staged))
        return removed

    async def release_orphans(self) -> list[str]:
        """Packages marked installed that no tenant uses: an uninstall or upgrade the daemon was killed in the
        middle of (the tenant's row went in one transaction, the files were to follow). Finish the job."""
        with self.db.session() as s:
            used = set(s.execute(select(Installation.unique_identifier)).scalars())
            installed = s.execute(select(PluginRecord.unique_identifier).where(PluginRecord.installed == 1))
            orphans = [identifier for identifier in installed.scalars() if identifier not in used]
        for identifier in orphans:
            await self.release(identifier)
        return orphans

    def interrupted_tasks(self) -> int:
        """Mark tasks a crash interrupted as failed (called at start-up)."""
        with self.db.session() as s:
            tasks = s.execute(select(InstallTask).where(InstallTask.status.in_(("pending", "running")))).scalars()
            count = 0
            for task in tasks:
                task.status = "failed"
                task.plugins = [{**p, "status": "failed" if p["status"] != "success" else "success",
                                 "message": p["message"] if p["status"] == "success" else
                                 "the daemon stopped during the install; install again"} for p in task.plugins]
                count += 1
        return count

    # -- uninstall --------------------------------------------------------------------------------------
    async def uninstall(self, tenant_id: str, installation_id: str) -> None:
        with self.db.session() as s:
            installation = s.get(Installation, installation_id)
            if installation is None or installation.tenant_id != tenant_id:
                raise NotFound(f"installation {installation_id} not found")
            identifier = installation.unique_identifier
            s.delete(installation)
        await self.release(identifier)

    async def _release_quietly(self, identifier: str) -> None:
        """After a failed install: what was prepared for it and nobody uses (a started new version whose
        switch failed) goes too; a failure to clean up must not hide the install's own error."""
        with contextlib.suppress(Exception):  # the task already carries the real error
            await self.release(identifier)

    async def release(self, identifier: str) -> None:
        """Stop and remove a package's process and files when no tenant uses it any more."""
        with self.db.session() as s:
            users = s.execute(select(Installation.id).where(Installation.unique_identifier == identifier)).first()
        if users is not None:
            return
        await self.supervisor.remove(identifier)
        shutil.rmtree(self.plugins / _safe_name(identifier), ignore_errors=True)
        with self.db.session() as s:
            s.execute(delete(PluginRecord).where(PluginRecord.unique_identifier == identifier,
                                                 PluginRecord.installed == 1))
            referenced = {row for row in s.execute(select(PluginRecord.env_id)).scalars() if row}
        await asyncio.to_thread(self.envs.collect_garbage, referenced)

    def restore(self) -> None:
        """Register every installed package with the supervisor (at start-up).

        Declarations stored by earlier builds are resolved again first (idempotent), so model rules are served
        with their templates filled in whichever build stored them.
        """
        with self.db.session() as s:
            for stored in s.execute(select(PluginRecord)).scalars():
                resolved = resolve_model_declaration(stored.declaration)
                if resolved != stored.declaration:
                    stored.declaration = resolved
        with self.db.session() as s:
            records = list(s.execute(select(PluginRecord).where(PluginRecord.installed == 1)).scalars())
        for record in records:
            directory = self.plugins / _safe_name(record.unique_identifier)
            env_python = self.envs.root / str(record.env_id) / "bin" / "python"
            if directory.exists() and env_python.exists():
                self.register(record.unique_identifier, record.plugin_id, directory, env_python, record.declaration)
