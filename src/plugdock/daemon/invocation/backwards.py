"""Reverse invocation: what a plugin asks of its host mid-session, checked against its manifest and routed.

- ``storage`` -> the daemon's key-value store, always;
- with a host application configured (``DIFY_INNER_API_URL``), every other type -> the host's inner API,
  exactly as the official daemon routes it (``internal/core/io_tunnel/backwards_invocation/task.go``): the
  host picks the credentials, applies quotas and load balancing, and may serve the call with a plugin
  installed on this daemon, called back through the dispatch routes;
- with no host (the standalone daemon), ``llm``, ``text_embedding``, ``rerank``, ``tts``, ``speech2text``,
  ``moderation`` and ``tool`` -> the tenant's installed model or tool plugin, dispatched by the daemon
  itself with the credentials saved through its ``management/credentials`` routes; other types get a
  clear error.

A call made from a model request is refused (as in the official daemon), calls carry the caller's
deadline, and a chain of plugins calling each other is cut at ``max_backwards_depth``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from plugdock.daemon.invocation.inner_api import InnerApi
from plugdock.errors import PlugdockError
from plugdock.protocol.messages import (
    STREAMED_INVOKE_TYPES,
    BackwardsEvent,
    InStreamEvent,
    backwards_response,
    request_line,
)

if TYPE_CHECKING:
    from plugdock.daemon.plugins.supervisor import PluginInstance, Supervisor
    from plugdock.daemon.settings import Settings
    from plugdock.daemon.state.credentials import CredentialStore
    from plugdock.daemon.state.db import Database
    from plugdock.daemon.state.kvstore import KVStore

# type -> (permission section, flag within it or "")
PERMISSIONS: dict[str, tuple[str, str] | None] = {
    "tool": ("tool", ""), "llm": ("model", "llm"), "llm_structured_output": ("model", "llm"),
    "system_summary": ("model", "llm"), "text_embedding": ("model", "text_embedding"),
    "multimodal_embedding": ("model", "text_embedding"), "rerank": ("model", "rerank"),
    "multimodal_rerank": ("model", "rerank"), "tts": ("model", "tts"), "speech2text": ("model", "speech2text"),
    "moderation": ("model", "moderation"), "node_parameter_extractor": ("node", ""),
    "node_question_classifier": ("node", ""), "app": ("app", ""), "fetch_app": ("app", ""),
    "storage": ("storage", ""), "upload_file": None,
}
PERMISSION_NAMES = {"tool": "tool", "model": "model", "node": "node", "app": "app", "storage": "storage"}

INNER_API_PATHS = {
    "llm": "invoke/llm", "llm_structured_output": "invoke/llm/structured-output", "text_embedding":
    "invoke/text-embedding", "multimodal_embedding": "invoke/multimodal-embedding", "rerank": "invoke/rerank",
    "multimodal_rerank": "invoke/multimodal-rerank", "tts": "invoke/tts", "speech2text": "invoke/speech2text",
    "moderation": "invoke/moderation", "tool": "invoke/tool", "app": "invoke/app",
    "node_parameter_extractor": "invoke/parameter-extractor", "node_question_classifier":
    "invoke/question-classifier", "system_summary": "invoke/summary", "upload_file": "upload/file/request",
    "fetch_app": "fetch/app/info",
}

# Model reverse calls the daemon can serve itself: invoke type -> (model_type, plugin action)
LOCAL_MODEL_ACTIONS = {
    "llm": ("llm", "invoke_llm"), "text_embedding": ("text-embedding", "invoke_text_embedding"),
    "rerank": ("rerank", "invoke_rerank"), "tts": ("tts", "invoke_tts"),
    "speech2text": ("speech2text", "invoke_speech2text"), "moderation": ("moderation", "invoke_moderation"),
}


class BackwardsError(PlugdockError):
    code = "invoke_dify_error"


def split_provider(value: str) -> tuple[str | None, str]:
    """``author/plugin/provider`` (as Dify names providers) -> (``author/plugin``, ``provider``)."""
    parts = value.split("/")
    if len(parts) >= 3:
        return "/".join(parts[:2]), parts[-1]
    return None, value


class BackwardsRouter:
    """Answers plugins' reverse calls: storage here, the rest through the host's inner API (or, with no host,
    plugins installed on this daemon)."""

    def __init__(self, settings: Settings, db: Database, kv: KVStore, credentials: CredentialStore,
                 supervisor: Supervisor) -> None:
        self.settings = settings
        self.db = db
        self.kv = kv
        self.credentials = credentials
        self.supervisor = supervisor
        self.host = InnerApi(settings)

    async def handle(self, instance: PluginInstance, session_id: str, invoke: dict[str, Any]) -> None:
        request_id = str(invoke.get("backwards_request_id", "")) if isinstance(invoke, dict) else ""
        waiting = instance.sessions.get(session_id)

        async def reply(event: BackwardsEvent, message: str = "", data: Any = None) -> None:
            await instance.send(request_line(session_id, backwards_response(request_id, event, message, data),
                                             event=InStreamEvent.BACKWARDS_RESPONSE))

        try:
            kind, request = invoke.get("type"), invoke.get("request")
            if not isinstance(kind, str) or not request_id or not isinstance(request, dict):
                raise BackwardsError("malformed reverse invocation: it needs a string type, a string "
                                     "backwards_request_id and an object request")
            if kind not in PERMISSIONS:
                raise BackwardsError(f"unknown reverse invocation type {kind!r}")
            if waiting is None:
                raise BackwardsError("the session this call belongs to has ended")
            if waiting.action_type == "model":
                raise BackwardsError("you can not invoke dify from model")
            self._check_permission(instance, kind)
            streamed = kind in STREAMED_INVOKE_TYPES
            async for data in self._route(instance, waiting, kind, request):
                await reply(BackwardsEvent.RESPONSE, "stream" if streamed else "struct", data)
        except PlugdockError as exc:
            await reply(BackwardsEvent.ERROR, exc.message)
        except (ValueError, TypeError, KeyError) as exc:
            await reply(BackwardsEvent.ERROR, f"malformed {invoke.get('type')} request: {exc}")
        except Exception as exc:  # never leave the plugin waiting for an answer that will not come
            instance.logs.append(f"[plugdock] reverse {invoke.get('type')} call failed: {type(exc).__name__}: {exc}")
            await reply(BackwardsEvent.ERROR, f"the daemon could not serve this {invoke.get('type')} call: "
                                              f"{type(exc).__name__}: {exc}")
        await reply(BackwardsEvent.END)

    def _storage(self, tenant: str, plugin: str, request: dict[str, Any], limit: int) -> dict[str, Any]:
        opt, key = request.get("opt"), str(request.get("key", ""))
        if opt == "set":
            self.kv.set(tenant, plugin, key, bytes.fromhex(str(request.get("value", ""))), limit)
            return {"data": "ok"}
        if opt == "get":
            return {"data": self.kv.get(tenant, plugin, key).hex()}
        if opt == "del":
            return {"data": "ok", "deleted_num": self.kv.delete(tenant, plugin, key)}
        if opt == "exist":
            found = self.kv.exist(tenant, plugin, key)
            return {"data": found, "exist_num": int(found)}
        raise PlugdockError(f"unknown storage opt {opt!r}; use set, get, del or exist")

    def _check_permission(self, instance: PluginInstance, kind: str) -> None:
        needed = PERMISSIONS[kind]
        if needed is None:
            return
        section, flag = needed
        permission = ((instance.launch.manifest.get("resource") or {}).get("permission") or {}).get(section) or {}
        if not permission.get("enabled") or (flag and not permission.get(flag)):
            what = f"{section}.{flag}" if flag else section
            raise BackwardsError(f"permission denied, you need to enable {PERMISSION_NAMES[section]} access in "
                                 f"plugin manifest (resource.permission.{what})")

    async def _route(self, instance: PluginInstance, waiting: Any, kind: str,
                     request: dict[str, Any]) -> AsyncIterator[Any]:
        tenant = waiting.tenant_id
        if kind == "storage":
            storage = ((instance.launch.manifest.get("resource") or {}).get("permission") or {}).get("storage") or {}
            limit = min(int(storage.get("size") or self.settings.storage_max_size), self.settings.storage_max_size)
            yield await asyncio.to_thread(self._storage, tenant, instance.launch.plugin_id, request, limit)
            return
        if waiting.depth >= self.settings.max_backwards_depth:
            raise BackwardsError(f"reverse invocation depth limit ({self.settings.max_backwards_depth}) reached: "
                                 "plugins are calling each other in a loop")
        if self.host.configured:
            async for item in self._inner_api(tenant, waiting.user_id, kind, request, waiting.deadline):
                yield item
            return
        local = await self._local_target(tenant, kind, request)
        if local is None:
            raise BackwardsError(f"no host application configured for {kind!r} calls (set DIFY_INNER_API_URL and "
                                 "DIFY_INNER_API_KEY), and no installed plugin of this tenant provides it")
        async for item in self._dispatch_local(waiting, *local):
            yield item

    async def _local_target(self, tenant: str, kind: str, request: dict[str, Any],
                            ) -> tuple[str, dict[str, Any]] | None:
        """(installed identifier, request data) when an installed plugin of this tenant can serve the call."""
        if kind not in LOCAL_MODEL_ACTIONS and kind != "tool":
            return None
        plugin_hint, provider = split_provider(str(request.get("provider", "")))
        section = "tool" if kind == "tool" else "model"
        match = self._provider_plugin(tenant, section, provider, plugin_hint)
        if match is None:
            return None
        identifier, plugin_id = match
        credentials = await asyncio.to_thread(self.credentials.get, tenant, plugin_id, provider)
        if kind == "tool":
            return identifier, {"type": "tool", "action": "invoke_tool", "provider": provider,
                                "tool": request.get("tool"), "tool_parameters": request.get("tool_parameters") or {},
                                "credentials": credentials}
        model_type, action = LOCAL_MODEL_ACTIONS[kind]
        data = {k: v for k, v in request.items() if k not in ("completion_params", "mode")}
        data.update({"type": "model", "action": action, "provider": provider, "model_type": model_type,
                     "credentials": credentials})
        if kind == "llm":
            data["model_parameters"] = request.get("completion_params") or {}
        return identifier, data

    def _provider_plugin(self, tenant: str, section: str, provider: str,
                         plugin_hint: str | None) -> tuple[str, str] | None:
        from plugdock.daemon.state.models import Installation, PluginRecord

        with self.db.session() as s:
            rows = s.execute(select(Installation.unique_identifier, Installation.plugin_id, PluginRecord.declaration)
                             .join(PluginRecord, PluginRecord.unique_identifier == Installation.unique_identifier)
                             .where(Installation.tenant_id == tenant)).all()
        for identifier, plugin_id, declaration in rows:
            decl = (declaration or {}).get(section) or {}
            name = decl.get("provider") if section == "model" else (decl.get("identity") or {}).get("name")
            if name == provider and (plugin_hint is None or plugin_hint == plugin_id):
                return identifier, plugin_id
        return None

    async def _dispatch_local(self, waiting: Any, identifier: str, data: dict[str, Any]) -> AsyncIterator[Any]:
        target = await self.supervisor.ready(identifier)
        data = {**data, "user_id": waiting.user_id}
        async for message in target.request(waiting.tenant_id, data, {}, depth=waiting.depth + 1,
                                            deadline=waiting.deadline):
            if message.get("type") == "error":
                error = message.get("data") or {}
                raise BackwardsError(f"{error.get('error_type', 'Error')}: {error.get('message', '')}")
            if message.get("type") == "stream":
                yield message.get("data")

    async def _inner_api(self, tenant: str, user_id: str, kind: str, request: dict[str, Any],
                         deadline: float) -> AsyncIterator[Any]:
        """The official daemon's body: the plugin's request plus tenant, user and type (``task.go``
        ``dispatchDifyInvocationTask``), to the path of that type (``calldify/http_request.go``)."""
        body = {**request, "tenant_id": tenant, "user_id": user_id, "type": kind}
        if kind in STREAMED_INVOKE_TYPES:
            async for item in self.host.stream(INNER_API_PATHS[kind], body, deadline):
                yield item
        else:
            yield await self.host.call(INNER_API_PATHS[kind], body, deadline)
