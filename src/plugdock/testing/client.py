"""``PluginTestClient``: load a plugin folder and call any of its actions directly, as the daemon would."""

from __future__ import annotations

import binascii
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plugdock.runtime.executor import Executor
from plugdock.runtime.iteration import sync_iter
from plugdock.runtime.registry import PluginRegistry, plugin_frame
from plugdock.sdk.session import Session
from plugdock.testing.host import FakeHost
from plugdock.testing.imports import PluginImports


@dataclass
class InvocationResult:
    """What one request produced: the stream chunks (wire form) and, if it failed, the error (wire form),
    the exception, and where in the plugin's own code it was raised (``frame``, ``file:line in fn: code``)."""

    chunks: list[Any] = field(default_factory=list)
    error: dict[str, Any] | None = None
    exception: BaseException | None = field(default=None, repr=False)
    frame: str | None = None
    _root: Path | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """Joined text of text messages (tools, agents) or of LLM deltas (models)."""
        out = []
        for chunk in self.chunks:
            if isinstance(chunk, dict) and chunk.get("type") == "text":
                out.append(chunk["message"]["text"])
            elif isinstance(chunk, dict) and isinstance(chunk.get("delta"), dict):
                content = chunk["delta"]["message"].get("content")
                out.append(content if isinstance(content, str) else "")
        return "".join(out)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [c for c in self.chunks if isinstance(c, dict) and c.get("type") == kind]

    @property
    def error_line(self) -> str | None:
        """The error in one line, with the plugin's frame: ``KeyError: 'api_key' (at tools/w.py:9 in ...)``."""
        if self.error is None:
            return None
        where = f" (at {self.frame})" if self.frame else ""
        return f"{self.error['error_type']}: {self.error['message']}{where}"

    @property
    def traceback(self) -> str | None:
        """The plugin-side traceback, from the plugin's first frame on (the client's own frames left out)."""
        if self.exception is None:
            return None
        return plugin_traceback(self.exception, self._root)

    def raise_for_error(self) -> InvocationResult:
        """Raise ``AssertionError`` (from the plugin's exception, so pytest shows its traceback) on failure."""
        if self.error:
            raise AssertionError(self.error_line) from self.exception
        return self


def plugin_traceback(exc: BaseException, root: Path | None) -> str:
    """``exc`` formatted, its stack starting at the first frame in the plugin folder when there is one."""
    summary = traceback.TracebackException.from_exception(exc)
    if root is not None:
        frames = list(summary.stack)
        first = next((i for i, f in enumerate(frames) if Path(f.filename).resolve().is_relative_to(root)), None)
        if first is not None:
            summary.stack = traceback.StackSummary.from_list(frames[first:])
    return "".join(summary.format())


@dataclass
class EndpointResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class PluginTestClient:
    """A plugin loaded in this process as the daemon loads it: the folder first on ``sys.path`` (sibling
    imports such as ``from tools.parse import …`` work from any working directory), each client with its
    own modules (two plugins with a ``tools`` package each see their own)."""

    def __init__(self, plugin_dir: str | Path, host: FakeHost | None = None) -> None:
        self.imports = PluginImports(Path(plugin_dir))
        with self.imports:
            self.registry = PluginRegistry.load(plugin_dir)
        self.executor = Executor(self.registry)
        self.host = host or FakeHost()

    def request(self, access_type: str, action: str, data: Mapping[str, Any] | None = None, *,
                user_id: str = "test-user", app_id: str | None = None, context: Mapping[str, Any] | None = None,
                on_chunk: Callable[[Any], None] | None = None) -> InvocationResult:
        """Run one action exactly as the runtime does, collecting chunks; errors are returned, not raised."""
        payload = {**(data or {}), "user_id": user_id, "type": access_type, "action": action}
        session = Session(uuid.uuid4().hex, self.host, user_id=user_id, app_id=app_id, context=context)
        result = InvocationResult(_root=self.registry.root)
        try:
            with self.imports:
                handler = self.executor.handler_for(payload)
                for chunk in sync_iter(handler(session, payload)):
                    result.chunks.append(chunk)
                    if on_chunk is not None:
                        on_chunk(chunk)
        except Exception as exc:
            from plugdock.runtime.server import _error_type

            result.error = {"error_type": _error_type(exc), "message": str(exc)}
            result.exception, result.frame = exc, plugin_frame(exc, self.registry.root)
        return result

    # -- conveniences -----------------------------------------------------------------------------
    def invoke_tool(self, provider: str, tool: str, parameters: Mapping[str, Any] | None = None,
                    credentials: Mapping[str, Any] | None = None) -> InvocationResult:
        return self.request("tool", "invoke_tool", {"provider": provider, "tool": tool,
                                                    "tool_parameters": dict(parameters or {}),
                                                    "credentials": dict(credentials or {})})

    def validate_tool_credentials(self, provider: str, credentials: Mapping[str, Any]) -> InvocationResult:
        return self.request("tool", "validate_tool_credentials", {"provider": provider,
                                                                  "credentials": dict(credentials)})

    def invoke_llm(self, provider: str, model: str, prompt_messages: list[Any], *,
                   credentials: Mapping[str, Any] | None = None, model_parameters: Mapping[str, Any] | None = None,
                   tools: list[Any] | None = None, stop: list[str] | None = None,
                   stream: bool = True) -> InvocationResult:
        def dump(value: Any) -> Any:
            return value.model_dump(mode="json") if hasattr(value, "model_dump") else value

        return self.request("model", "invoke_llm", {
            "provider": provider, "model_type": "llm", "model": model, "credentials": dict(credentials or {}),
            "prompt_messages": [dump(m) for m in prompt_messages], "model_parameters": dict(model_parameters or {}),
            "tools": [dump(t) for t in tools or []], "stop": stop or [], "stream": stream})

    def invoke_model(self, action: str, provider: str, model_type: str, model: str,
                     **fields: Any) -> InvocationResult:
        return self.request("model", action, {"provider": provider, "model_type": model_type, "model": model,
                                              "credentials": fields.pop("credentials", {}), **fields})

    def invoke_agent_strategy(self, provider: str, strategy: str, params: Mapping[str, Any]) -> InvocationResult:
        return self.request("agent_strategy", "invoke_agent_strategy", {
            "agent_strategy_provider": provider, "agent_strategy": strategy, "agent_strategy_params": dict(params)})

    def invoke_endpoint(self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
                        body: bytes = b"", settings: Mapping[str, Any] | None = None) -> EndpointResponse:
        from plugdock.runtime.http_wire import serialize_request

        raw = serialize_request(method, path, {"Host": "localhost", **(headers or {})}, body)
        result = self.request("endpoint", "invoke_endpoint", {
            "raw_http_request": binascii.hexlify(raw).decode(), "settings": dict(settings or {})})
        result.raise_for_error()
        status, data = 0, b""
        response_headers: dict[str, str] = {}
        for chunk in result.chunks:
            status = chunk.get("status", status)
            response_headers = chunk.get("headers", response_headers)
            if "result" in chunk:
                data += binascii.unhexlify(chunk["result"])
        return EndpointResponse(status, dict(response_headers), data)

    # -- datasources ------------------------------------------------------------------------------
    def validate_datasource_credentials(self, provider: str, credentials: Mapping[str, Any]) -> InvocationResult:
        return self.request("datasource", "validate_datasource_credentials", {"provider": provider,
                                                                              "credentials": dict(credentials)})

    def invoke_datasource(self, action: str, provider: str, datasource: str,
                          credentials: Mapping[str, Any] | None = None, **fields: Any) -> InvocationResult:
        """One datasource action; ``action`` is the official name or its short form (``get_website_crawl``,
        ``get_online_document_pages``, ``get_online_document_page_content``, ``online_drive_browse_files``,
        ``online_drive_download_file``, the daemon's route names); ``fields`` are ``datasource_parameters``,
        ``page`` or ``request`` as the action takes."""
        from plugdock.runtime.datasource import ROUTE_ACTIONS

        action = ROUTE_ACTIONS.get(action, action)
        return self.request("datasource", action, {"provider": provider, "datasource": datasource,
                                                   "credentials": dict(credentials or {}), **fields})

    # -- triggers ---------------------------------------------------------------------------------
    @staticmethod
    def webhook(method: str = "POST", path: str = "/", *, headers: Mapping[str, str] | None = None,
                body: bytes | str = b"") -> str:
        """A webhook request as the daemon sends it to a trigger: the hex of its HTTP/1.1 bytes."""
        from plugdock.runtime.http_wire import serialize_request

        data = body.encode() if isinstance(body, str) else body
        return binascii.hexlify(serialize_request(method, path, {"Host": "localhost", **(headers or {})},
                                                  data)).decode()

    def dispatch_trigger_event(self, provider: str, subscription: Mapping[str, Any], raw_http_request: str, *,
                               credentials: Mapping[str, Any] | None = None,
                               credential_type: str | None = None) -> InvocationResult:
        """``{"user_id", "events", "response" (hex HTTP bytes), "payload"}`` in ``chunks[0]``."""
        return self.request("trigger", "dispatch_trigger_event", {
            "provider": provider, "subscription": dict(subscription), "raw_http_request": raw_http_request,
            "credentials": dict(credentials) if credentials is not None else None,
            "credential_type": credential_type})

    def invoke_trigger_event(self, provider: str, event: str, subscription: Mapping[str, Any],
                             raw_http_request: str, *, parameters: Mapping[str, Any] | None = None,
                             payload: Mapping[str, Any] | None = None, credentials: Mapping[str, Any] | None = None,
                             credential_type: str = "api-key") -> InvocationResult:
        """``{"variables", "cancelled"}`` in ``chunks[0]`` (cancelled when the event raised EventIgnoreError)."""
        return self.request("trigger", "invoke_trigger_event", {
            "provider": provider, "event": event, "subscription": dict(subscription),
            "raw_http_request": raw_http_request, "parameters": dict(parameters or {}),
            "payload": dict(payload or {}), "credentials": dict(credentials or {}),
            "credential_type": credential_type})

    def validate_trigger_credentials(self, provider: str, credentials: Mapping[str, Any]) -> InvocationResult:
        return self.request("trigger", "validate_trigger_credentials", {"provider": provider,
                                                                        "credentials": dict(credentials)})

    def subscribe_trigger(self, provider: str, endpoint: str, parameters: Mapping[str, Any] | None = None, *,
                          credentials: Mapping[str, Any] | None = None,
                          credential_type: str = "api-key") -> InvocationResult:
        return self.request("trigger", "subscribe_trigger", {
            "provider": provider, "endpoint": endpoint, "parameters": dict(parameters or {}),
            "credentials": dict(credentials or {}), "credential_type": credential_type})

    def unsubscribe_trigger(self, provider: str, subscription: Mapping[str, Any], *,
                            credentials: Mapping[str, Any] | None = None,
                            credential_type: str = "api-key") -> InvocationResult:
        return self.request("trigger", "unsubscribe_trigger", {
            "provider": provider, "subscription": dict(subscription), "credentials": dict(credentials or {}),
            "credential_type": credential_type})

    def refresh_trigger(self, provider: str, subscription: Mapping[str, Any], *,
                        credentials: Mapping[str, Any] | None = None,
                        credential_type: str = "api-key") -> InvocationResult:
        return self.request("trigger", "refresh_trigger", {
            "provider": provider, "subscription": dict(subscription), "credentials": dict(credentials or {}),
            "credential_type": credential_type})
