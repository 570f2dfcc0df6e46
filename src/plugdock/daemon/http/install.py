"""Management routes that change what is installed: uploads, install tasks, upgrades, uninstalls."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, File, Form, UploadFile
from sqlalchemy import select

from plugdock.daemon.core import Daemon
from plugdock.daemon.http import envelope
from plugdock.daemon.http.bodies import IdentifiersBody, UninstallBody, UpgradeBody, parse_identifier
from plugdock.daemon.http.context import PREFIX, DaemonDep
from plugdock.daemon.http.management import installed_identifiers
from plugdock.daemon.plugins.bundles import install_bundle, read_bundle, reference_value
from plugdock.daemon.plugins.installer import NotFound
from plugdock.daemon.state.models import InstallTask
from plugdock.errors import InvalidRequest, PackageError
from plugdock.schema.bundle import PackageDependency

router = APIRouter()


@router.post(PREFIX + "/install/upload/package")
async def upload_package(d: DaemonDep, tenant_id: str, dify_pkg: UploadFile = File(...),  # noqa: B008
                         verify_signature: str = Form("false")) -> dict[str, Any]:
    data = await dify_pkg.read(d.settings.max_package_size + 1)
    if len(data) > d.settings.max_package_size:
        raise PackageError(f"package is over the {d.settings.max_package_size}-byte limit (MAX_PLUGIN_PACKAGE_SIZE)")
    decoded = await asyncio.to_thread(d.installer.decode, data, verify_signature.lower() == "true")
    return envelope.success({"unique_identifier": str(decoded.identifier), "manifest": decoded.declaration,
                             "verification": decoded.verification})


async def _bundle_upload(d: Daemon, upload: UploadFile) -> bytes:
    """A bundle's bytes, refused past twelve packages' worth (the official MAX_BUNDLE_PACKAGE_SIZE)."""
    limit = d.settings.max_package_size * 12
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise PackageError(f"bundle is over the {limit}-byte limit (MAX_BUNDLE_PACKAGE_SIZE)")
    return data


@router.post(PREFIX + "/install/upload/bundle")
async def upload_bundle(d: DaemonDep, tenant_id: str, dify_bundle: UploadFile = File(...),  # noqa: B008
                        verify_signature: str = Form("false")) -> dict[str, Any]:
    """The official route: decode a bundle and list its members (package members are uploaded)."""
    data = await _bundle_upload(d, dify_bundle)
    bundle, archive = read_bundle(data, d.settings)
    out: list[dict[str, Any]] = []
    for dep in bundle.dependencies:
        if not isinstance(dep, PackageDependency):
            out.append({"type": dep.type, "value": reference_value(dep)})
            continue
        member = archive.read(dep.value.path) or archive.read(f"_assets/{dep.value.path}")
        if member is None:
            raise PackageError(f"package {dep.value.path!r} is not inside the bundle")
        decoded = await asyncio.to_thread(d.installer.decode, member, verify_signature.lower() == "true",
                                        False, True)  # a bundle member: ENFORCE_LANGGENIUS_PLUGIN_SIGNATURES
        out.append({"type": dep.type,
                    "value": {"unique_identifier": str(decoded.identifier), "manifest": decoded.declaration}})
    return envelope.success(out)


@router.post(PREFIX + "/install/bundle")
async def install_bundle_route(d: DaemonDep, tenant_id: str, dify_bundle: UploadFile = File(...),  # noqa: B008
                               verify_signature: str = Form("false")) -> dict[str, Any]:
    """plugdock's own: fetch every member (bundle, marketplace, GitHub) and install all in one task."""
    data = await _bundle_upload(d, dify_bundle)
    return envelope.success(await install_bundle(d.installer, d.settings, tenant_id, data,
                                                 verify_signature.lower() == "true"))


@router.post(PREFIX + "/install/identifiers")
async def install_identifiers(d: DaemonDep, tenant_id: str, body: IdentifiersBody) -> dict[str, Any]:
    for identifier in body.plugin_unique_identifiers:
        parse_identifier(identifier)
    installed = installed_identifiers(d, tenant_id)
    if all(i in installed for i in body.plugin_unique_identifiers):
        return envelope.success({"all_installed": True, "task_id": ""})
    task_id = d.installer.create_task(tenant_id, body.plugin_unique_identifiers, body.source, body.metas)
    return envelope.success({"all_installed": False, "task_id": task_id})


@router.post(PREFIX + "/install/upgrade")
async def install_upgrade(d: DaemonDep, tenant_id: str, body: UpgradeBody) -> dict[str, Any]:
    parse_identifier(body.new_plugin_unique_identifier)
    task_id = await d.installer.upgrade(tenant_id, body.original_plugin_unique_identifier,
                                               body.new_plugin_unique_identifier, body.source, body.meta)
    return envelope.success({"all_installed": False, "task_id": task_id})


def _task_json(task: InstallTask) -> dict[str, Any]:
    return {"id": task.id, "created_at": task.created_at.isoformat(), "updated_at": task.updated_at.isoformat(),
            "status": task.status, "tenant_id": task.tenant_id, "total_plugins": task.total_plugins,
            "completed_plugins": task.completed_plugins, "plugins": task.plugins}


@router.get(PREFIX + "/install/tasks")
async def list_tasks(d: DaemonDep, tenant_id: str, page: envelope.Page = 1,
                     page_size: envelope.PageSize = 256) -> dict[str, Any]:
    page, page_size = max(page, 1), min(max(page_size, 1), 256)
    with d.db.session() as s:
        tasks = s.execute(select(InstallTask).where(InstallTask.tenant_id == tenant_id)
                          .order_by(InstallTask.created_at.desc()).offset((page - 1) * page_size)
                          .limit(page_size)).scalars().all()
        return envelope.success([_task_json(t) for t in tasks])


@router.get(PREFIX + "/install/tasks/{task_id}")
async def get_task(d: DaemonDep, tenant_id: str, task_id: str) -> dict[str, Any]:
    with d.db.session() as s:
        task = s.get(InstallTask, task_id)
        if task is None or task.tenant_id != tenant_id:
            raise NotFound(f"install task {task_id} not found")
        return envelope.success(_task_json(task))


@router.post(PREFIX + "/install/tasks/{task_id}/delete")
async def delete_task(d: DaemonDep, tenant_id: str, task_id: str) -> dict[str, Any]:
    with d.db.session() as s:
        task = s.get(InstallTask, task_id)
        if task is not None and task.tenant_id == tenant_id:
            s.delete(task)
    return envelope.success(True)


@router.post(PREFIX + "/install/tasks/{task_id}/delete/{identifier:path}")
async def delete_task_item(d: DaemonDep, tenant_id: str, task_id: str, identifier: str) -> dict[str, Any]:
    """Drop one plugin from a task, and the task once only successes are left (the official
    DeletePluginInstallationItemFromTask); an unknown task is no error. Items are dropped only from a
    finished task: the installer addresses a running task's items by position."""
    identifier = str(parse_identifier(identifier.lstrip("/")))
    with d.db.session() as s:
        task = s.get(InstallTask, task_id)
        if task is None or task.tenant_id != tenant_id:
            return envelope.success(True)
        if any(p.get("status") in ("pending", "running") for p in task.plugins):
            raise InvalidRequest(f"install task {task_id} is still running; remove its items once it finishes")
        kept = [p for p in task.plugins if p.get("plugin_unique_identifier") != identifier]
        if all(p.get("status") == "success" for p in kept):
            s.delete(task)
        else:
            task.plugins = kept
    return envelope.success(True)


@router.post(PREFIX + "/install/tasks/delete_all")
async def delete_all_tasks(d: DaemonDep, tenant_id: str) -> dict[str, Any]:
    with d.db.session() as s:
        for task in s.execute(select(InstallTask).where(InstallTask.tenant_id == tenant_id)).scalars():
            s.delete(task)
    return envelope.success(True)


@router.post(PREFIX + "/uninstall")
async def uninstall(d: DaemonDep, tenant_id: str, body: UninstallBody) -> dict[str, Any]:
    await d.installer.uninstall(tenant_id, body.plugin_installation_id)
    return envelope.success(True)

