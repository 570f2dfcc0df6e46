"""What each action does: find the plugin's class, call it, and turn its results into wire chunks.

A handler takes the session and the request's data and returns an iterable of JSON-ready chunks
(each becomes one ``stream`` session message). Errors are raised; the server turns them into a
session ``error`` whose ``error_type`` is the exception's class name, as the host expects.
"""

from __future__ import annotations

import binascii
import inspect
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from plugdock.runtime.actions import (
    Handler,
    NotFoundError,
    RequestDataError,
    UnknownActionError,
    need,
    oauth_credentials_answer,
    oauth_refreshed_answer,
    raw_http_request,
)
from plugdock.runtime.iteration import drain_async
from plugdock.runtime.registry import PluginRegistry
from plugdock.sdk.messages import InvokeMessage
from plugdock.sdk.session import Session

# Handler and the request errors live in ``actions`` (``model_actions`` imports them too); re-exported here.
__all__ = ["BLOB_CHUNK", "Executor", "Handler", "NotFoundError", "RequestDataError", "UnknownActionError",
           "message_chunks"]

BLOB_CHUNK = 8192


def _dump(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value


def message_chunks(messages: Any, what: str) -> Iterator[dict[str, Any]]:
    """Wire form of the messages a tool or strategy yields; blobs go out in 8 KiB chunks."""
    if messages is None:
        return
    if inspect.isasyncgen(messages):
        messages = drain_async(messages)
    if not hasattr(messages, "__iter__"):
        raise TypeError(f"{what} must yield messages (a generator), but returned {type(messages).__name__}")
    for message in messages:
        if not isinstance(message, InvokeMessage):
            raise TypeError(f"{what} yielded {type(message).__name__}; yield messages made with "
                            "self.create_text_message(...), create_json_message(...) and the other create_* helpers")
        if isinstance(message.message, InvokeMessage.BlobMessage):
            yield from _blob_chunks(message)
        else:
            yield message.to_wire()


def _blob_chunks(message: InvokeMessage) -> Iterator[dict[str, Any]]:
    assert isinstance(message.message, InvokeMessage.BlobMessage)
    blob, blob_id = message.message.blob, uuid.uuid4().hex
    pieces = [blob[i : i + BLOB_CHUNK] for i in range(0, len(blob), BLOB_CHUNK)]
    for sequence, piece in enumerate([*pieces, b""]):
        chunk = InvokeMessage.BlobChunkMessage(id=blob_id, sequence=sequence, total_length=len(blob), blob=piece,
                                               end=sequence == len(pieces))
        yield {"type": "blob_chunk", "message": chunk.to_dict(), "meta": message.meta}


class Executor:
    """Maps ``(access type, action)`` to a handler over the plugin's registry."""

    def __init__(self, registry: PluginRegistry) -> None:
        self.registry = registry
        self.handlers: dict[tuple[str, str], Handler] = {
            ("tool", "invoke_tool"): self.invoke_tool,
            ("tool", "validate_tool_credentials"): self.validate_tool_credentials,
            ("tool", "get_tool_runtime_parameters"): self.get_tool_runtime_parameters,
            ("dynamic_parameter", "fetch_parameter_options"): self.fetch_parameter_options,
            ("oauth", "get_authorization_url"): self.oauth_authorization_url,
            ("oauth", "get_credentials"): self.oauth_get_credentials,
            ("oauth", "refresh_credentials"): self.oauth_refresh_credentials,
            ("endpoint", "invoke_endpoint"): self.invoke_endpoint,
            ("agent_strategy", "invoke_agent_strategy"): self.invoke_agent_strategy,
        }
        from plugdock.runtime.model_actions import model_handlers

        self.handlers.update(model_handlers(registry))
        from plugdock.runtime.datasource import DatasourceActions
        from plugdock.runtime.trigger import TriggerActions

        datasources, triggers = DatasourceActions(registry), TriggerActions(registry)
        self.handlers.update(datasources.handlers(self.handlers))
        self.handlers.update(triggers.handlers(self.handlers))
        # what the plugin serves, a line per provider: logged at start, as the official SDK does
        self.summary = [*registry.summary(), *datasources.summary(), *triggers.summary()]

    def handler_for(self, data: Mapping[str, Any]) -> Handler:
        kind, action = data.get("type"), data.get("action")
        handler = self.handlers.get((str(kind), str(action)))
        if handler is None:
            known = sorted(a for t, a in self.handlers if t == kind)
            hint = f"; known {kind} actions: {', '.join(known)}" if known else ""
            raise UnknownActionError(f"unknown action {action!r} for access type {kind!r}{hint}")
        return handler

    # -- tools --------------------------------------------------------------------------------
    def _tool_provider(self, name: str) -> Any:
        entry = self.registry.tool_providers.get(name)
        if entry is None:
            raise NotFoundError(f"Provider `{name}` not found")
        return entry

    def _tool(self, session: Session, data: Mapping[str, Any], tool_key: str = "tool") -> Any:
        from plugdock.sdk.tool import ToolRuntime

        entry = self._tool_provider(need(data, "provider"))
        name = need(data, tool_key)
        tool_cls = entry.tools.get(name)
        if tool_cls is None:
            raise NotFoundError(f"Tool `{name}` not found for provider `{entry.name}`")
        runtime = ToolRuntime(credentials=dict(data.get("credentials") or {}), user_id=data.get("user_id"),
                              session_id=session.session_id,
                              credential_type=data.get("credential_type") or "api-key")
        return tool_cls(runtime=runtime, session=session)

    def invoke_tool(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        tool = self._tool(session, data)
        params = need(data, "tool_parameters", dict)
        return message_chunks(tool.invoke(params), f"tool {type(tool).__name__}")

    def validate_tool_credentials(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        entry = self._tool_provider(need(data, "provider"))
        entry.provider_cls().validate_credentials(need(data, "credentials", dict))
        return [{"result": True}]

    def get_tool_runtime_parameters(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        tool = self._tool(session, data)
        if not type(tool).has_runtime_parameters():
            raise ValueError(f"Tool `{data['tool']}` does not implement runtime parameters")
        return [{"parameters": [_dump(p) for p in tool.get_runtime_parameters()]}]

    def fetch_parameter_options(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        tool = self._tool(session, data, "provider_action")
        options = tool.fetch_parameter_options(need(data, "parameter"))
        return [{"options": [_dump(o) for o in options]}]

    def _oauth_provider(self, data: Mapping[str, Any]) -> Any:
        return self._tool_provider(need(data, "provider")).provider_cls()

    def oauth_authorization_url(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        url = self._oauth_provider(data).oauth_get_authorization_url(
            need(data, "redirect_uri"), data.get("system_credentials") or {})
        return [{"authorization_url": url}]

    def oauth_get_credentials(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        creds = self._oauth_provider(data).oauth_get_credentials(
            need(data, "redirect_uri"), data.get("system_credentials") or {}, raw_http_request(data))
        return oauth_credentials_answer(creds)

    def oauth_refresh_credentials(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        creds = self._oauth_provider(data).oauth_refresh_credentials(
            need(data, "redirect_uri"), data.get("system_credentials") or {}, data.get("credentials") or {})
        return oauth_refreshed_answer(creds)

    # -- endpoints ----------------------------------------------------------------------------
    def invoke_endpoint(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        from plugdock.runtime.http_wire import endpoint_response_chunks, parse_request, route_endpoint

        raw = need(data, "raw_http_request")
        try:
            request = parse_request(binascii.unhexlify(raw))
        except (binascii.Error, ValueError) as exc:
            raise RequestDataError(f"raw_http_request is not a hex-encoded HTTP request: {exc}") from None
        return endpoint_response_chunks(session, self.registry, request, route_endpoint,
                                        data.get("settings") or {})

    # -- agent strategies ---------------------------------------------------------------------
    def invoke_agent_strategy(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        from plugdock.sdk.agent import AgentRuntime

        provider = need(data, "agent_strategy_provider")
        name = need(data, "agent_strategy")
        entry = self.registry.agent_providers.get(provider)
        strategy_cls = entry.strategies.get(name) if entry else None
        if strategy_cls is None:
            raise NotFoundError(f"Agent `{name}` not found for provider `{provider}`")
        strategy = strategy_cls(runtime=AgentRuntime(user_id=data.get("user_id")), session=session)
        params = need(data, "agent_strategy_params", dict)
        return message_chunks(strategy.invoke(params), f"agent strategy {name}")
