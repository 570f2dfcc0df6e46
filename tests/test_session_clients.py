"""Reverse-invocation clients send the official request shapes and parse the answers (via ``FakeHost``)."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import Any

from plugdock.sdk.session import Session
from plugdock.testing import FakeHost


def session(host: FakeHost) -> Session:
    return Session("s1", host, app_id="app-1", context={"credentials": {"tool_credentials": {"time": "cred-9"}}})


def test_apps_nodes_summary_and_tool_credentials() -> None:
    host = FakeHost(apps={"a1": lambda request: {"answer": request["query"]}},
                    nodes={"parameter_extractor": lambda request: {"city": "Paris"}})
    host.tools[("time", "now")] = lambda params: "noon"
    s = session(host)
    assert s.app.chat.invoke("a1", "hello?", {}) == {"answer": "hello?"}
    assert list(s.app.chat.invoke("a1", "x", {}, response_mode="streaming")) == [{"answer": "x"}]
    assert s.workflow_node.parameter_extractor.invoke([{"name": "city"}], {"provider": "p"}, "in Paris") == {
        "city": "Paris"}
    assert s.model.summary.invoke("short", "instr") == "short"
    assert s.model.summary.invoke("x" * 2000, "instr") == "x" * 200
    assert [m.message.text for m in s.tool.invoke_builtin_tool("time", "now", {})] == ["noon"]
    tool_call = host.calls_of("tool")[0]
    assert tool_call == {"tool_type": "builtin", "provider": "time", "tool": "now", "tool_parameters": {},
                         "app_id": "app-1", "credential_id": "cred-9"}
    chat = host.calls_of("app")[0]
    assert chat["response_mode"] == "blocking" and chat["query"] == "hello?"


def test_llm_blocking_aggregates_chunks() -> None:
    from plugdock.sdk.model import UserPromptMessage

    host = FakeHost(llm_reply=lambda request: ["a", "b", "c"])
    result = session(host).model.llm.invoke({"provider": "p", "model": "m", "mode": "chat"},
                                            [UserPromptMessage(content="q")], stream=False)
    assert result.message.content == "abc"
    request = host.calls_of("llm")[0]
    assert request["model_type"] == "llm" and request["prompt_messages"][0]["role"] == "user"


def test_file_upload_posts_to_the_signed_url(tmp_path: Path) -> None:
    received: dict[str, Any] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            payload = json.dumps({"id": "f1", "name": "a.txt", "size": 3, "extension": "txt",
                                  "mime_type": "text/plain"}).encode()
            self.send_response(201)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = FakeHost()
    host._upload_file = lambda request: iter([{"url": f"http://127.0.0.1:{server.server_port}/upload"}])  # type: ignore[attr-defined]
    try:
        uploaded = session(host).file.upload("a.txt", b"abc", "text/plain")
    finally:
        server.shutdown()
    assert uploaded.id == "f1" and b"abc" in received["body"]
    assert host.calls_of("upload_file") == [{"filename": "a.txt", "mimetype": "text/plain"}]


def test_streaming_endpoint_response(tmp_path: Path) -> None:
    from plugdock.testing import PluginTestClient

    from conftest import make_plugin

    root = make_plugin(tmp_path / "e", kind="extension")
    (root / "endpoints" / "hello.py").write_text(
        "from werkzeug import Response\nfrom plugdock.sdk import Endpoint\n\n\n"
        "class Stream(Endpoint):\n"
        "    def _invoke(self, r, values, settings):\n"
        "        def body():\n            yield b'one,'\n            yield 'two'\n"
        "        return Response(body(), status=201, content_type='text/csv')\n"
    )
    client = PluginTestClient(root)
    result = client.request("endpoint", "invoke_endpoint", {"raw_http_request": __import__("binascii").hexlify(
        b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").decode(), "settings": {}})
    assert [set(c) for c in result.chunks] == [{"status", "headers"}, {"result"}, {"result"}]
    response = client.invoke_endpoint("GET", "/hello")
    assert (response.status, response.body) == (201, b"one,two")
