"""The import: planned against what the plugdock home holds, then applied — packages one by one through the
daemon's installer, then every row in one transaction.

Nothing is ever overwritten: an item plugdock holds already (same id, or the same tenant and plugin, hook id
or storage key) is ``unchanged`` when it is the same thing and skipped, naming what plugdock holds, when it is
not. So a second run changes nothing, and a run after plugdock has been used keeps plugdock's data. Official
ids are kept (installations, endpoints, hook ids): Dify refers to them. A package that cannot be imported is
skipped with everything that depends on it; the others proceed. If the transaction fails nothing of it is
written; packages prepared before it no tenant uses, which the daemon removes at its next start.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from plugdock.daemon.core import Daemon
from plugdock.daemon.migration.official import (
    TENANT,
    Layout,
    OfficialEndpoint,
    OfficialInstallation,
    OfficialState,
    StoredValue,
    read_official,
)
from plugdock.daemon.migration.packages import check_package, failure_reason, import_package, read_package
from plugdock.daemon.migration.report import Report
from plugdock.daemon.migration.target import Snapshot, digest, read_snapshot, read_without_writing
from plugdock.daemon.settings import Settings
from plugdock.daemon.state.kvstore import StorageError, check_key, row_cost
from plugdock.daemon.state.models import EndpointRecord, Installation, StorageItem, StorageUsage
from plugdock.errors import PlugdockError
from plugdock.packaging.identifier import InvalidIdentifier, PluginIdentifier

REMOTE = "a remote-debugging session's installation, which ends with its session: connect the plugin to plugdock's " \
         "debugging port again"


@dataclass
class Plan:
    installations: list[OfficialInstallation] = field(default_factory=list)
    endpoints: list[tuple[OfficialEndpoint, str]] = field(default_factory=list)  # with the package identifier
    storage: list[StoredValue] = field(default_factory=list)
    live: dict[tuple[str, str], str] = field(default_factory=dict)  # (tenant, plugin id): uid after the import


def _installation_item(inst: OfficialInstallation) -> str:
    return f"{inst.unique_identifier} for tenant {inst.tenant_id} (installation {inst.id})"


class Planner:
    def __init__(self, state: OfficialState, snap: Snapshot, report: Report) -> None:
        self.state, self.snap, self.report = state, snap, report
        self.plan = Plan()

    def installations(self) -> None:
        for inst in self.state.installations:
            item = _installation_item(inst)
            reason = self._installation_problem(inst)
            if reason == REMOTE:
                self.report.skip("installation", item, reason, by_design=True)
                continue
            if reason:
                self.report.skip("installation", item, reason)
                continue
            existing = self.snap.installations.get(inst.id)
            if existing == (inst.tenant_id, inst.plugin_id, inst.unique_identifier):
                self.report.unchanged("installation")
                self.plan.live[(inst.tenant_id, inst.plugin_id)] = inst.unique_identifier
            elif existing is not None:
                self.report.skip("installation", item, f"plugdock's installation {inst.id} is {existing[2]} for "
                                                       f"tenant {existing[0]}: kept as it is")
            elif (other := self.snap.installed.get((inst.tenant_id, inst.plugin_id))) is not None:
                self.report.skip("installation", item, f"plugdock has {other[1]} installed for this tenant "
                                                       f"(installation {other[0]}): kept as it is")
            else:
                if inst.runtime_type == "serverless":
                    self.report.warnings.append(f"{item} ran serverless under the official daemon; plugdock runs "
                                                "it as a local plugin")
                self.plan.installations.append(inst)

    @staticmethod
    def _installation_problem(inst: OfficialInstallation) -> str | None:
        if inst.runtime_type == "remote":
            return REMOTE
        if inst.runtime_type not in ("local", "serverless"):
            return f"runtime_type {inst.runtime_type!r} is none the official daemon writes (local, remote, serverless)"
        if not TENANT.match(inst.tenant_id):
            return f"tenant_id {inst.tenant_id!r} is not a tenant id (letters, digits, '-' and '_', 1 to 64)"
        try:
            identifier = PluginIdentifier.parse(inst.unique_identifier)
        except InvalidIdentifier as exc:
            return exc.message
        if identifier.plugin_id != inst.plugin_id:
            return f"plugin_id {inst.plugin_id!r} is not the plugin of its identifier ({identifier.plugin_id})"
        return None

    def packages(self) -> list[str]:
        """Identifiers to import; those plugdock has installed already are counted unchanged."""
        needed = sorted({i.unique_identifier for i in self.plan.installations} | set(self.plan.live.values()))
        todo = []
        for identifier in needed:
            if self.snap.packages.get(identifier) == 1:
                self.report.unchanged("package")
            else:
                todo.append(identifier)
        return todo

    def package_done(self, identifier: str, failure: BaseException | None) -> None:
        if failure is None:
            self.report.created("package")
            return
        self.report.skip("package", identifier, failure_reason(failure))
        for inst in [i for i in self.plan.installations if i.unique_identifier == identifier]:
            self.plan.installations.remove(inst)
            self.report.skip("installation", _installation_item(inst), f"its package {identifier} was not imported")

    def endpoints(self) -> None:
        installed = {(i.tenant_id, i.plugin_id) for i in self.state.installations}
        live = {**self.plan.live, **{(i.tenant_id, i.plugin_id): i.unique_identifier for i in self.plan.installations}}
        for endpoint in self.state.endpoints:
            item = f"{endpoint.hook_id} of {endpoint.plugin_id} for tenant {endpoint.tenant_id} " \
                   f"(endpoint {endpoint.id})"
            existing = self.snap.endpoints.get(endpoint.id)
            if existing == (endpoint.hook_id, endpoint.tenant_id, endpoint.plugin_id):
                self.report.unchanged("endpoint")
            elif existing is not None:
                self.report.skip("endpoint", item, f"plugdock's endpoint {endpoint.id} is hook {existing[0]} of "
                                                   f"{existing[2]} for tenant {existing[1]}: kept as it is")
            elif endpoint.hook_id in self.snap.hooks:
                self.report.skip("endpoint", item, f"plugdock's endpoint {self.snap.hooks[endpoint.hook_id]} has "
                                                   "this hook id: kept as it is")
            elif (uid := live.get((endpoint.tenant_id, endpoint.plugin_id))) is None:
                why = "its installation was not imported" if (endpoint.tenant_id, endpoint.plugin_id) in installed \
                    else f"the official database has no installation of {endpoint.plugin_id} for this tenant"
                self.report.skip("endpoint", item, why)
            else:
                self.plan.endpoints.append((endpoint, uid))

    def storage(self) -> None:
        for value in self.state.storage:
            item = f"{value.key!r} of {value.plugin_id} for tenant {value.tenant_id}"
            try:
                check_key(value.key)
                data = value.read()
            except StorageError as exc:
                self.report.skip("storage", item, exc.message)
                continue
            except OSError as exc:
                self.report.skip("storage", item, f"{value.path}: {exc.strerror or exc}")
                continue
            existing = self.snap.storage.get((value.tenant_id, value.plugin_id, value.key))
            if existing == digest(data):
                self.report.unchanged("storage")
            elif existing is not None:
                self.report.skip("storage", item, "plugdock holds another value for this key: kept as it is")
            else:
                self.plan.storage.append(value)

    def counted(self, settings: Settings) -> None:
        """Count what the plan creates, and warn about what the operator must set up for it."""
        self.report.created("installation", len(self.plan.installations))
        self.report.created("endpoint", len(self.plan.endpoints))
        self.report.created("storage", len(self.plan.storage))
        if self.plan.endpoints and not settings.inner_api_url:
            self.report.warnings.append(
                f"{len(self.plan.endpoints)} endpoint(s) keep their settings as Dify encrypted them; secret fields "
                "open only through the host: set DIFY_INNER_API_URL and DIFY_INNER_API_KEY before serving them")


def _stamps(row: OfficialInstallation | OfficialEndpoint) -> dict[str, Any]:
    return {name: value for name in ("created_at", "updated_at") if (value := getattr(row, name)) is not None}


def apply(daemon: Daemon, plan: Plan, report: Report) -> None:
    """Every row in one transaction; storage usage recomputed from the rows, as the key-value store counts it."""
    touched: set[tuple[str, str]] = set()
    with daemon.db.session() as s:
        for inst in plan.installations:
            s.add(Installation(id=inst.id, tenant_id=inst.tenant_id, plugin_id=inst.plugin_id,
                               unique_identifier=inst.unique_identifier, runtime_type="local", source=inst.source,
                               meta=inst.meta, **_stamps(inst)))
        for endpoint, uid in plan.endpoints:
            s.add(EndpointRecord(id=endpoint.id, hook_id=endpoint.hook_id, tenant_id=endpoint.tenant_id,
                                 user_id=endpoint.user_id, plugin_id=endpoint.plugin_id, unique_identifier=uid,
                                 name=endpoint.name, enabled=int(endpoint.enabled),
                                 settings=json.dumps(endpoint.settings).encode(), **_stamps(endpoint)))
        for index, value in enumerate(plan.storage):
            data = value.read()
            s.add(StorageItem(tenant_id=value.tenant_id, plugin_id=value.plugin_id, key=value.key, value=data,
                              size=len(data)))
            touched.add((value.tenant_id, value.plugin_id))
            if index % 200 == 199:
                s.flush()
        s.flush()
        for tenant, plugin in sorted(touched):
            rows = list(s.execute(select(StorageItem.key, StorageItem.size).where(
                StorageItem.tenant_id == tenant, StorageItem.plugin_id == plugin)))
            total = sum(row_cost(key, size) for key, size in rows)
            if len(rows) > daemon.settings.storage_max_keys:
                report.warnings.append(
                    f"storage of {plugin} for tenant {tenant} holds {len(rows)} keys, over the "
                    f"{daemon.settings.storage_max_keys} allowed (PLUGDOCK_STORAGE_MAX_KEYS): new keys will be refused")
            usage = s.get(StorageUsage, (tenant, plugin))
            if usage is None:
                s.add(StorageUsage(tenant_id=tenant, plugin_id=plugin, used=total))
            else:
                usage.used = total
            if total > daemon.settings.storage_max_size:
                report.warnings.append(
                    f"storage of {plugin} for tenant {tenant} uses {total} bytes (keys, values and per-key overhead), "
                    f"over the {daemon.settings.storage_max_size} allowed (PERSISTENCE_STORAGE_MAX_SIZE): writes that "
                    "grow it will be refused")


Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


async def _packages(planner: Planner, run: Callable[[str], Awaitable[None]], say: Progress) -> None:
    todo = planner.packages()
    for index, identifier in enumerate(todo, 1):
        say(f"package {index}/{len(todo)}: {identifier}")
        try:
            await run(identifier)
        except Exception as exc:  # one bad package is reported; the others proceed
            planner.package_done(identifier, exc)
        else:
            planner.package_done(identifier, None)


async def migrate(settings: Settings, url: str, layout: Layout, dry_run: bool = False,
                  say: Progress = _quiet) -> Report:
    """Import the official state into the home of ``settings``; a dry run writes nothing, anywhere.

    ``say`` hears what is being done (each package, and each step of its install), for a progress display."""
    state = read_official(url, layout)
    report = Report(dry_run=dry_run)
    for kind, item, reason in state.problems:
        report.skip(kind, item, reason)
    if dry_run:
        planner = Planner(state, read_without_writing(settings, state.storage_pairs), report)
        planner.installations()

        async def check(identifier: str) -> None:
            check_package(read_package(layout, identifier), identifier, settings.max_package_size)

        await _packages(planner, check, say)
        return _finish(planner, settings)
    daemon = Daemon(settings)
    try:
        with daemon.db.session() as s:
            planner = Planner(state, read_snapshot(s, state.storage_pairs), report)
        planner.installations()
        known = set(planner.snap.packages)

        async def install(identifier: str) -> None:
            await import_package(daemon, layout, identifier, identifier in known,
                                 lambda step: say(f"  {step}"))

        await _packages(planner, install, say)
        _finish(planner, settings)
        try:
            apply(daemon, planner.plan, report)
        except (OSError, PlugdockError, SQLAlchemyError) as exc:
            why = str(exc).splitlines()[0] if isinstance(exc, SQLAlchemyError) else failure_reason(exc)
            raise PlugdockError(f"the import was rolled back, nothing of its installations, endpoints or storage "
                                f"was written: {why}") from exc
    finally:
        await daemon.stop()
    return report


def _finish(planner: Planner, settings: Settings) -> Report:
    planner.endpoints()
    planner.storage()
    planner.counted(settings)
    return planner.report
