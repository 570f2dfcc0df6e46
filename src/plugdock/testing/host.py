"""``FakeHost``: answers a plugin's reverse invocations in tests, and records every call.

Storage is an in-memory store with the daemon's semantics; the LLM echoes the last user message
unless you give it a reply; tools and apps are functions you register.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from plugdock.sdk.session import BackwardsInvocationError, Session

LLMReply = Callable[[dict[str, Any]], str | list[str]]
ToolFn = Callable[[dict[str, Any]], list[dict[str, Any]] | str]


@dataclass
class Call:
    type: str
    request: dict[str, Any]
    session_id: str


@dataclass
class FakeHost:
    llm_reply: LLMReply | None = None
    tools: dict[tuple[str, str], ToolFn] = field(default_factory=dict)
    apps: dict[str, Callable[[dict[str, Any]], Any]] = field(default_factory=dict)
    nodes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = field(default_factory=dict)
    storage: dict[str, bytes] = field(default_factory=dict)
    allowed: set[str] | None = None
    calls: list[Call] = field(default_factory=list)

    def invoke(self, session: Session, invoke_type: str, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        self.calls.append(Call(invoke_type, request, session.session_id))
        if self.allowed is not None and invoke_type not in self.allowed:
            raise BackwardsInvocationError(
                f"permission denied, you need to enable {invoke_type} access in plugin manifest")
        handler = getattr(self, f"_{invoke_type}", None)
        if handler is None:
            raise BackwardsInvocationError(f"FakeHost does not answer {invoke_type!r} invocations")
        yield from handler(request)

    def calls_of(self, invoke_type: str) -> list[dict[str, Any]]:
        return [c.request for c in self.calls if c.type == invoke_type]

    def _storage(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        opt, key = request.get("opt"), str(request.get("key", ""))
        if opt == "set":
            self.storage[key] = binascii.unhexlify(request.get("value", ""))
            yield {"data": "ok"}
        elif opt == "get":
            if key not in self.storage:
                raise BackwardsInvocationError(
                    "load data failed, please check if the key is correct or you have not set it")
            yield {"data": binascii.hexlify(self.storage[key]).decode()}
        elif opt == "del":
            existed = self.storage.pop(key, None) is not None
            yield {"data": "ok", "deleted_num": int(existed)}
        elif opt == "exist":
            yield {"data": key in self.storage, "exist_num": int(key in self.storage)}
        else:
            raise BackwardsInvocationError(f"unknown storage opt {opt!r}")

    def _llm(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if self.llm_reply is not None:
            reply = self.llm_reply(request)
        else:
            users = [m for m in request.get("prompt_messages") or [] if m.get("role") == "user"]
            content = users[-1].get("content") if users else ""
            reply = content if isinstance(content, str) else ""
        pieces = reply if isinstance(reply, list) else [reply]
        for index, piece in enumerate(pieces):
            yield {"model": request.get("model", "fake"), "prompt_messages": [], "system_fingerprint": None,
                   "delta": {"index": index, "message": {"role": "assistant", "content": piece, "tool_calls": []},
                             "usage": None, "finish_reason": "stop" if index == len(pieces) - 1 else None}}

    def _tool(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        key = (str(request.get("provider")), str(request.get("tool")))
        fn = self.tools.get(key)
        if fn is None:
            raise BackwardsInvocationError(f"tool {key[0]}/{key[1]} not found")
        result = fn(dict(request.get("tool_parameters") or {}))
        if isinstance(result, str):
            result = [{"type": "text", "message": {"text": result}, "meta": None}]
        yield from result

    def _app(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        fn = self.apps.get(str(request.get("app_id")))
        if fn is None:
            raise BackwardsInvocationError(f"app {request.get('app_id')} not found")
        result = fn(request)
        yield from (result if isinstance(result, list) else [result])

    def _node_question_classifier(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        fn = self.nodes.get("question_classifier")
        yield fn(request) if fn else {"class_name": (request.get("classes") or [{}])[0]}

    def _node_parameter_extractor(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        fn = self.nodes.get("parameter_extractor")
        yield fn(request) if fn else {}

    def _system_summary(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield {"summary": str(request.get("text", ""))[:200]}
