"""Extension plugins' endpoints: set up per tenant under a hook id, and public traffic relayed byte for byte.

``/e/{hook_id}/{path}`` is rebuilt as an HTTP/1.1 request (proxy headers removed, ``Dify-Hook-Id`` and
``Dify-Hook-Url`` set by the daemon, as the official daemon does), hex-encoded, and sent to the plugin with
the endpoint's settings (stored encrypted); the plugin's status, headers and body chunks are streamed back.
The rebuilt request must mean to the plugin what it meant to the daemon: header names and values holding
control characters are refused (a plugin splitting lines differently would see a header the daemon
removed), names with ``_`` are dropped (WSGI reads ``X_Real_Ip`` as ``X-Real-Ip``), and the target is
percent-encoded again from the decoded path.
"""

from __future__ import annotations

import binascii
import re
import secrets
import unicodedata
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.responses import Response, StreamingResponse

from plugdock.daemon.core import Daemon
from plugdock.daemon.http import envelope
from plugdock.daemon.http.context import DaemonDep
from plugdock.daemon.invocation.host_crypto import EndpointSettings
from plugdock.daemon.plugins.installer import NotFound
from plugdock.daemon.plugins.supervisor import PluginUnavailable
from plugdock.daemon.state.models import EndpointRecord, Installation, PluginRecord
from plugdock.errors import InvalidRequest, PlugdockError
from plugdock.packaging.identifier import PluginIdentifier
from plugdock.runtime.http_wire import serialize_request

STRIPPED_HEADERS = {"x-forwarded-for", "x-real-ip", "x-forwarded", "x-original-forwarded-for", "x-original-url",
                    "x-original-host", "host", "content-length", "transfer-encoding", "connection"}
HOOK_HEADERS = {"dify-hook-id", "dify-hook-url"}  # set by the daemon only, whatever the client sent
HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}
HEADER_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an RFC 9110 token
PATH_SAFE = "/:@!$&'()*+,;=-._~"  # RFC 3986 pchar and '/', left as they are; all else is percent-encoded
QUERY_SAFE = PATH_SAFE + "?%[]"  # '%' kept: the query arrives encoded already
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]


class PermissionDenied(PlugdockError):
    code = "permission_denied"
    envelope_kind = (403, "PluginPermissionDeniedError")  # exception.PermissionDeniedError


class PluginNotInstalled(NotFound):
    envelope_kind = (404, "PluginNotFoundError")  # exception.ErrPluginNotFound


class RemoveFailed(PlugdockError):
    """The official RemoveEndpoint's answer for an endpoint that is not there; Dify's delete_endpoint
    (api/core/plugin/impl/endpoint.py) treats "record not found" in it as success, so removing twice works."""

    envelope_kind = (500, "PluginDaemonInternalServerError")


class BadHeader(InvalidRequest):
    """A header the relay cannot pass on unchanged in meaning."""


def header_text(name: bytes, value: bytes) -> tuple[str, str]:
    """A header's name and value as latin-1 text (the bytes unchanged), or ``BadHeader`` naming it.

    Values are read as UTF-8 where they are UTF-8 (else latin-1), and refused if they then hold any
    control character but tab: CR, LF and NUL, and also those ``str.splitlines`` and other parsers break
    lines at (``\\x0b``, ``\\x1c``-``\\x1e``, ``\\x85``, U+2028, U+2029)."""
    shown = name.decode("latin-1")
    if not HEADER_NAME.fullmatch(name):
        raise BadHeader(f"header name {shown!r} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~ only)")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("latin-1")
    for char in text:
        if char != "\t" and (unicodedata.category(char) == "Cc" or char in "\u2028\u2029"):
            raise BadHeader(f"header {shown} holds the control character {char!r}; header values may not contain "
                            "CR, LF, NUL or other control characters")
    return shown, value.decode("latin-1")


def relayed_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The client's headers to pass on, in order and with repeats; proxy, hop-by-hop and hook headers removed."""
    kept = []
    for name, value in raw:
        text_name, text_value = header_text(name, value)
        lowered = text_name.lower()
        if "_" in lowered or lowered in STRIPPED_HEADERS or lowered in HOOK_HEADERS:
            continue
        kept.append((text_name, text_value))
    return kept


def request_target(path: str, query: bytes) -> str:
    """The request target for the plugin: the decoded path percent-encoded again as UTF-8, the query as sent
    with anything outside URL characters encoded (spaces and raw non-ASCII bytes among them)."""
    target = "/" + quote(path, safe=PATH_SAFE)
    return target + ("?" + quote(query, safe=QUERY_SAFE) if query else "")


class SetupBody(BaseModel):
    user_id: str = ""
    plugin_unique_identifier: str
    settings: dict[str, Any] = Field(default_factory=dict)
    name: str = "default"


class UpdateBody(BaseModel):
    endpoint_id: str
    user_id: str = ""
    name: str | None = None
    settings: dict[str, Any] | None = None


class EndpointIdBody(BaseModel):
    endpoint_id: str
    user_id: str = ""


router = APIRouter()
ENDPOINTS = "/plugin/{tenant_id}/endpoint"


# The official daemon's InstallEndpoint sets every endpoint's expired_at to this (internal/service/
# install_service/endpoint.go); Dify's EndpointEntity.expired_at is a required datetime.
EXPIRED_AT = "2050-01-01T00:00:00Z"


def record_json(d: Daemon, row: EndpointRecord) -> dict[str, Any]:
    with d.db.session() as s:
        plugin = s.execute(select(PluginRecord).where(
            PluginRecord.unique_identifier == row.unique_identifier)).scalar_one_or_none()
    declaration = (plugin.declaration if plugin else {}).get("endpoint") or {"settings": [], "endpoints": []}
    settings = EndpointSettings.of(d).stored(row.settings)  # every secret is masked: no need to decrypt
    out = {"id": row.id, "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat(),
           "tenant_id": row.tenant_id, "user_id": row.user_id, "plugin_id": row.plugin_id,
           "plugin_unique_identifier": row.unique_identifier, "name": row.name, "enabled": bool(row.enabled),
           "hook_id": row.hook_id, "expired_at": EXPIRED_AT, "settings": _mask_settings(settings, declaration),
           "declaration": declaration}
    # Without a configured public URL, Dify renders its own ENDPOINT_URL_TEMPLATE (entities/endpoint.py,
    # render_url_template fills url only when it is absent) rather than showing the daemon's inner address.
    if d.settings.public_url:
        out["url"] = f"{d.settings.public_url.rstrip('/')}/e/{row.hook_id}"
    return out


def base_url(d: Daemon, request: Request) -> str:
    return d.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")


def owned(d: Daemon, tenant_id: str, endpoint_id: str) -> EndpointRecord:
    with d.db.session() as s:
        row = s.get(EndpointRecord, endpoint_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"endpoint {endpoint_id} not found")
    return row


@router.post(ENDPOINTS + "/setup")
async def setup(d: DaemonDep, tenant_id: str, body: SetupBody) -> dict[str, Any]:
    identifier = PluginIdentifier.parse(body.plugin_unique_identifier)
    with d.db.session() as s:
        installed = s.execute(select(Installation).where(
            Installation.tenant_id == tenant_id,
            Installation.unique_identifier == body.plugin_unique_identifier)).scalar_one_or_none()
        plugin = s.execute(select(PluginRecord).where(
            PluginRecord.unique_identifier == body.plugin_unique_identifier)).scalar_one_or_none()
    if installed is None or plugin is None:
        raise PluginNotInstalled(f"plugin {body.plugin_unique_identifier} is not installed for this tenant")
    permission = ((plugin.declaration.get("resource") or {}).get("permission") or {}).get("endpoint") or {}
    if not permission.get("enabled"):
        raise PermissionDenied("permission denied, you need to enable endpoint access in plugin manifest")
    if not plugin.declaration.get("endpoint"):
        raise InvalidRequest(f"plugin {identifier.plugin_id} does not have an endpoint")
    _check_settings(body.settings, plugin.declaration.get("endpoint"))
    endpoint_id, sealed = await EndpointSettings.of(d).seal_new(tenant_id, body.user_id,
                                                                body.plugin_unique_identifier, body.settings)
    with d.db.session() as s:
        s.add(EndpointRecord(id=endpoint_id, hook_id=secrets.token_hex(16), tenant_id=tenant_id,
                             user_id=body.user_id, plugin_id=identifier.plugin_id,
                             unique_identifier=body.plugin_unique_identifier, name=body.name, enabled=1,
                             settings=sealed))
    return envelope.success(True)


@router.post(ENDPOINTS + "/update")
async def update(d: DaemonDep, tenant_id: str, body: UpdateBody) -> dict[str, Any]:
    owned(d, tenant_id, body.endpoint_id)
    with d.db.session() as s:
        row = s.get(EndpointRecord, body.endpoint_id)
        assert row is not None
        if body.name is not None:
            row.name = body.name
        if body.settings is not None:
            # masked secrets sent back unchanged keep their stored value
            row.settings = await EndpointSettings.of(d).update(row, body.user_id, body.settings)
    return envelope.success(True)


@router.post(ENDPOINTS + "/remove")
async def remove(d: DaemonDep, tenant_id: str, body: EndpointIdBody) -> dict[str, Any]:
    try:
        owned(d, tenant_id, body.endpoint_id)
    except NotFound as exc:
        raise RemoveFailed("failed to remove endpoint: record not found") from exc
    with d.db.session() as s:
        row = s.get(EndpointRecord, body.endpoint_id)
        if row is not None:
            s.delete(row)
    return envelope.success(True)


async def set_enabled(d: Daemon, tenant_id: str, endpoint_id: str, enabled: int) -> dict[str, Any]:
    owned(d, tenant_id, endpoint_id)
    with d.db.session() as s:
        row = s.get(EndpointRecord, endpoint_id)
        assert row is not None
        row.enabled = enabled
    return envelope.success(True)


@router.post(ENDPOINTS + "/enable")
async def enable(d: DaemonDep, tenant_id: str, body: EndpointIdBody) -> dict[str, Any]:
    return await set_enabled(d, tenant_id, body.endpoint_id, 1)


@router.post(ENDPOINTS + "/disable")
async def disable(d: DaemonDep, tenant_id: str, body: EndpointIdBody) -> dict[str, Any]:
    return await set_enabled(d, tenant_id, body.endpoint_id, 0)


@router.get(ENDPOINTS + "/list")
async def list_endpoints(d: DaemonDep, tenant_id: str, page: envelope.Page = 1,
                         page_size: envelope.PageSize = 100, plugin_id: str | None = None) -> dict[str, Any]:
    page, page_size = max(page, 1), min(max(page_size, 1), 100)
    with d.db.session() as s:
        query = select(EndpointRecord).where(EndpointRecord.tenant_id == tenant_id)
        if plugin_id:
            query = query.where(EndpointRecord.plugin_id == plugin_id)
        rows = s.execute(query.order_by(EndpointRecord.created_at).offset((page - 1) * page_size)
                         .limit(page_size)).scalars().all()
    return envelope.success([record_json(d, r) for r in rows])


@router.get(ENDPOINTS + "/list/plugin")
async def list_plugin_endpoints(d: DaemonDep, tenant_id: str, plugin_id: str, page: envelope.Page = 1,
                                page_size: envelope.PageSize = 100) -> dict[str, Any]:
    return await list_endpoints(d, tenant_id, page, page_size, plugin_id)


@router.api_route("/e/{hook_id}/{path:path}", methods=METHODS)


@router.api_route("/e/{hook_id}", methods=METHODS)
async def public(d: DaemonDep, hook_id: str, request: Request, path: str = "") -> Response:
    with d.db.session() as s:
        row = s.execute(select(EndpointRecord).where(EndpointRecord.hook_id == hook_id)).scalar_one_or_none()
    if row is None:
        return envelope.error(404, "endpoint not found", "PluginDaemonNotFoundError")
    if not row.enabled:
        return envelope.error(404, "endpoint is disabled", "PluginDaemonNotFoundError")
    try:
        relayed = relayed_headers(list(request.scope["headers"]))
    except BadHeader as exc:
        return envelope.error(400, exc.message, "PluginDaemonBadRequestError")
    limit = d.settings.endpoint_max_body
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return envelope.error(413, f"request body of {declared} bytes is over the {limit}-byte endpoint limit",
                              "PluginDaemonBadRequestError")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            return envelope.error(413, f"request body is over the {limit}-byte endpoint limit",
                                  "PluginDaemonBadRequestError")
    target = request_target(path, request.scope.get("query_string") or b"")
    host = request.headers.get("x-original-host") or request.headers.get("host", "localhost")
    headers = [("Host", host), *relayed, ("Dify-Hook-Id", hook_id),
               ("Dify-Hook-Url", f"{base_url(d, request)}/e/{hook_id}/{quote(path, safe=PATH_SAFE)}")]
    raw = serialize_request(request.method, target, headers, bytes(body))
    data = {"type": "endpoint", "action": "invoke_endpoint", "user_id": row.user_id,
            "raw_http_request": binascii.hexlify(raw).decode(), "settings": await EndpointSettings.of(d).open(row)}
    try:
        instance = await d.supervisor.ready(row.unique_identifier)
    except PluginUnavailable as exc:
        return envelope.error(500, exc.message, "PluginDaemonInvokeError")
    messages = instance.request(row.tenant_id, data, {"endpoint_id": row.id}).__aiter__()
    status, first = 200, b""
    response_headers: dict[str, str] = {}
    async for message in messages:  # the header phase: until the first chunk with a body
        if message.get("type") == "error":
            error = message.get("data") or {}
            return envelope.error(500, f"{error.get('error_type')}: {error.get('message')}", "PluginInvokeError")
        part: dict[str, Any] = message.get("data") or {}
        status = int(part.get("status") or status)
        response_headers.update(part.get("headers") or {})
        if "result" in part:
            first = binascii.unhexlify(part["result"] or "")
            break

    async def rest() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for message in messages:
            if message.get("type") == "stream" and "result" in (message.get("data") or {}):
                yield binascii.unhexlify(message["data"]["result"] or "")

    headers_out = {k: v for k, v in response_headers.items() if k.lower() not in HOP_BY_HOP}
    return StreamingResponse(rest(), status_code=status, headers=headers_out)


def _mask_settings(settings: dict[str, Any], declaration: dict[str, Any] | None) -> dict[str, Any]:
    secret = {f.get("name") for f in (declaration or {}).get("settings") or [] if f.get("type") == "secret-input"}
    return {k: ("[__HIDDEN__]" if k in secret and v else v) for k, v in settings.items()}


def _check_settings(values: dict[str, Any], declaration: dict[str, Any] | None) -> None:
    for field in (declaration or {}).get("settings") or []:
        name = field.get("name")
        if field.get("required") and values.get(name) in (None, ""):
            raise InvalidRequest(f"missing required setting: {name}")
        value = values.get(name)
        if value is None:
            continue
        kind = field.get("type")
        if kind in ("text-input", "secret-input", "select") and not isinstance(value, str):
            raise InvalidRequest(f"setting {name} is not a string")
        if kind == "boolean" and not isinstance(value, bool):
            raise InvalidRequest(f"setting {name} is not a boolean")
        if kind == "select" and value not in [o.get("value") for o in field.get("options") or []]:
            raise InvalidRequest(f"setting {name} is not a valid option")
