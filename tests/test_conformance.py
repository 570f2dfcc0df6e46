"""Differential conformance: the same plugin, once on the official ``dify_plugin`` SDK (Python 3.12 venv from
PyPI) and once on plugdock, gets the same request lines over real stdio; the normalised answers must match.

Normalised: tracebacks (the official SDK always sends one, plugdock only in debug mode), random ids of log and
blob messages, and latencies.
"""

from __future__ import annotations

import binascii
import copy
import difflib
import itertools
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conformance_plugins import all_models, kitchen_tool, to_official
from wire import PluginProcess

EXAMPLES = Path(__file__).parent.parent / "examples"
pytestmark = pytest.mark.slow

Answer = Callable[[PluginProcess, str, dict[str, Any]], None]


def normalise(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids: dict[str, str] = {}
    counter = itertools.count()

    def stable(value: str) -> str:
        if value not in ids:
            ids[value] = f"<id{next(counter)}>"
        return ids[value]

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key in ("id", "parent_id") and isinstance(item, str):
                    out[key] = stable(item)
                elif key == "result" and isinstance(item, str) and value.get("status", 0) >= 400:
                    out[key] = "<error page: each SDK words it its own way>"
                elif key == "Content-Length" and isinstance(item, str):
                    out[key] = "<length>"
                elif key == "latency":
                    out[key] = 0
                elif key == "parameter_rules" and isinstance(item, list):
                    # template help texts and translations are each SDK's own wording
                    out[key] = [{**walk(r), "help": None, "label": {"en_US": r["label"]["en_US"]}} for r in item]
                elif key == "args" and isinstance(item, dict):
                    out[key] = {k: v for k, v in item.items() if k != "traceback"}
                else:
                    out[key] = walk(item)
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return [walk(copy.deepcopy(m)) for m in messages]


def exchange(directory: Path, python: str, requests: list[dict[str, Any]], answer: Answer | None = None,
             ) -> list[list[dict[str, Any]]]:
    plugin = PluginProcess(directory, python=python)
    try:
        plugin.ready(timeout=60)
        sessions = [plugin.request(data, session_id=uuid.uuid4().hex) for data in requests]
        return [normalise(plugin.session(sid, timeout=30, answer=answer)) for sid in sessions]
    finally:
        plugin.close(timeout=1)


def compare(tmp_path: Path, official_python: str, plugin_dir: Path, requests: list[dict[str, Any]],
            answer: Answer | None = None) -> list[list[dict[str, Any]]]:
    import sys

    official_dir = to_official(plugin_dir, tmp_path / "official")
    ours = exchange(plugin_dir, sys.executable, requests, answer)
    theirs = exchange(official_dir, official_python, requests, answer)
    for request, mine, official in zip(requests, ours, theirs, strict=True):
        if mine != official:
            diff = difflib.unified_diff(json.dumps(official, indent=1, sort_keys=True).splitlines(),
                                        json.dumps(mine, indent=1, sort_keys=True).splitlines(),
                                        "official", "plugdock", lineterm="", n=2)
            pytest.fail(f"answers differ for {request.get('action')}:\n" + "\n".join(diff))
    return ours


def test_tool_every_message_kind(tmp_path: Path, official_python: str) -> None:
    root = kitchen_tool(tmp_path / "kitchen")
    base = {"type": "tool", "provider": "demo", "credentials": {}}
    answers = compare(tmp_path, official_python, root, [
        {**base, "action": "invoke_tool", "tool": "demo", "tool_parameters": {"text": "héllo"}},
        {**base, "action": "invoke_tool", "tool": "demo", "tool_parameters": {"fail": True}},
        {**base, "action": "invoke_tool", "tool": "missing", "tool_parameters": {}},
        {**base, "action": "validate_tool_credentials", "credentials": {"api_key": "ok"}},
        {**base, "action": "validate_tool_credentials", "credentials": {"api_key": "invalid"}},
        {**base, "action": "invoke_tool", "provider": "nope", "tool": "demo", "tool_parameters": {}},
    ])
    kinds = [m["data"]["type"] for m in answers[0] if m["type"] == "stream"]
    assert {"text", "json", "link", "image", "variable", "log", "blob_chunk", "retriever_resources"} <= set(kinds)


def test_model_every_kind(tmp_path: Path, official_python: str) -> None:
    root = all_models(tmp_path / "models")
    base = {"type": "model", "provider": "demo", "credentials": {"api_key": "k"}}
    prompt = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "one two three"}]
    compare(tmp_path, official_python, root, [
        {**base, "action": "invoke_llm", "model_type": "llm", "model": "demo-echo", "prompt_messages": prompt,
         "model_parameters": {"temperature": 0.5}, "tools": [], "stop": [], "stream": True},
        {**base, "action": "invoke_llm", "model_type": "llm", "model": "demo-echo", "prompt_messages": prompt,
         "model_parameters": {}, "tools": [], "stop": [], "stream": False},
        {**base, "action": "get_llm_num_tokens", "model_type": "llm", "model": "demo-echo",
         "prompt_messages": prompt, "tools": []},
        {**base, "action": "validate_provider_credentials"},
        {**base, "action": "validate_provider_credentials", "credentials": {}},
        {**base, "action": "validate_model_credentials", "model_type": "llm", "model": "demo-echo"},
        {**base, "action": "invoke_text_embedding", "model_type": "text-embedding", "model": "embed",
         "texts": ["a", "bcd"], "input_type": "query"},
        {**base, "action": "get_text_embedding_num_tokens", "model_type": "text-embedding", "model": "embed",
         "texts": ["a", "bcd"]},
        {**base, "action": "invoke_rerank", "model_type": "rerank", "model": "rerank", "query": "abc",
         "docs": ["a", "abcd", "abc"], "score_threshold": 0.0, "top_n": 2},
        {**base, "action": "invoke_tts", "model_type": "tts", "model": "tts", "content_text": "say this",
         "voice": "alloy", "tenant_id": "t"},
        {**base, "action": "invoke_speech2text", "model_type": "speech2text", "model": "s2t",
         "file": binascii.hexlify(b"RIFF....WAVE" + b"\0" * 100).decode()},
        {**base, "action": "invoke_moderation", "model_type": "moderation", "model": "mod", "text": "a bad word"},
        {**base, "action": "get_ai_model_schemas", "model_type": "llm", "model": "demo-echo"},
    ])


def test_endpoint(tmp_path: Path, official_python: str) -> None:
    from plugdock.runtime.http_wire import serialize_request

    def raw(method: str, path: str) -> str:
        return binascii.hexlify(serialize_request(method, path, {"Host": "example.com"}, b"")).decode()

    answers = compare(tmp_path, official_python, EXAMPLES / "hello_endpoint", [
        {"type": "endpoint", "action": "invoke_endpoint", "raw_http_request": raw("GET", "/hello?name=Ann"),
         "settings": {"greeting": "Hey"}},
        {"type": "endpoint", "action": "invoke_endpoint", "raw_http_request": raw("GET", "/missing"), "settings": {}},
    ])
    assert binascii.unhexlify(answers[0][0]["data"]["result"]) == b"Hey, Ann!"


def test_agent_strategy_with_reverse_invocation(tmp_path: Path, official_python: str) -> None:
    seen: list[dict[str, Any]] = []

    def answer(plugin: PluginProcess, session_id: str, invoke: dict[str, Any]) -> None:
        seen.append(invoke["request"])
        rid = invoke["backwards_request_id"]
        for index, piece in enumerate(["forty", " two"]):
            plugin.backwards(session_id, rid, "response", {
                "model": "m", "prompt_messages": [], "system_fingerprint": None,
                "delta": {"index": index, "message": {"role": "assistant", "content": piece, "tool_calls": []},
                          "usage": None, "finish_reason": None}}, "stream")
        plugin.backwards(session_id, rid, "end")

    model = {"provider": "p", "model": "m", "model_type": "llm", "mode": "chat", "completion_params": {}}
    answers = compare(tmp_path, official_python, EXAMPLES / "single_shot_agent", [
        {"type": "agent_strategy", "action": "invoke_agent_strategy", "agent_strategy_provider": "single_shot_agent",
         "agent_strategy": "single_shot_agent", "agent_strategy_params": {"model": model, "query": "question?"}},
    ], answer)
    assert answers[0][0]["data"]["message"]["text"] == "forty two"
    assert seen[0] == seen[1], "both SDKs must send the same reverse-invocation request"
