"""A fake Dify API server: the inner API routes the daemon calls, answered as Dify answers them.

Framing and shapes from Dify (``api/libs/helper.py`` ``length_prefixed_response``; ``api/controllers/
inner_api/plugin/plugin.py``; ``api/core/plugin/backwards_invocation/base.py`` and ``encrypt.py``): streamed
routes (``invoke/llm``, ``invoke/tool``, ``invoke/app`` ...) answer ``struct.pack("<BBHI", 0x0F, 0, 10,
len(data))`` + six zero bytes + ``data`` per chunk, ``data`` being ``{"data": <chunk>, "error": ""}`` (an error
is a last frame ``{"data": null, "error": "..."}``); the other routes answer that object as plain JSON. Every
inner route needs ``X-Inner-Api-Key`` and ``tenant_id``/``user_id`` in the body (``get_user_tenant``).
``invoke/encrypt`` seals ``secret-input`` fields reversibly and answers ``{"data": {"data": {...}}}``.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INNER_KEY = "inner-secret"
SEALED = "host-sealed:"


def frame(payload: dict[str, Any]) -> bytes:
    """One length-prefixed frame, exactly as Dify's ``length_prefixed_response`` packs it."""
    data = json.dumps(payload).encode("utf-8")
    return struct.pack("<BBHI", 0x0F, 0, 0xA, len(data)) + b"\x00" * 6 + data


def seal(value: Any) -> str:
    return SEALED + base64.b64encode(json.dumps(value).encode()).decode()


def unseal(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(SEALED):
        return json.loads(base64.b64decode(value[len(SEALED):]))
    raise ValueError(f"not a sealed value: {value!r}")


def llm_chunk(model: str, text: str, finish: bool = False) -> dict[str, Any]:
    """An ``LLMResultChunk`` as Dify's model runtime serialises it."""
    delta: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text, "name": None,
                                                     "tool_calls": []}}
    if finish:
        delta["finish_reason"] = "stop"
        delta["usage"] = {"prompt_tokens": 1, "prompt_unit_price": "0", "prompt_price_unit": "0",
                          "prompt_price": "0", "completion_tokens": 2, "completion_unit_price": "0",
                          "completion_price_unit": "0", "completion_price": "0", "total_tokens": 3,
                          "total_price": "0", "currency": "USD", "latency": 0.1}
    return {"model": model, "prompt_messages": [], "system_fingerprint": None, "delta": delta}


class FakeHost:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.keys: list[str | None] = []
        self.cleared: list[str] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = json.loads(raw) if self.path.startswith("/inner/") else {"raw": len(raw)}
                host.calls.append((self.path, body))
                host.keys.append(self.headers.get("X-Inner-Api-Key"))
                if self.path.startswith("/inner/"):
                    if self.headers.get("X-Inner-Api-Key") != INNER_KEY:
                        return self._send(401, b'{"error": "unauthorized"}', "application/json")
                    if not body.get("tenant_id") or "user_id" not in body:
                        return self._send(400, b'{"message": "tenant_id and user_id are required"}',
                                          "application/json")
                route = self.path.removeprefix("/inner/api/")
                if route == "invoke/llm":
                    self._stream(self._llm(body))
                elif route == "invoke/tool":
                    self._stream([{"type": "text", "message": {"text": f"host ran {body['tool']}"}, "meta": None}])
                elif route == "invoke/app":
                    self._stream({"event": "message", "answer": word} for word in ("hello", " from", " the app"))
                elif route == "invoke/encrypt":
                    self._json(self._encrypt(body))
                elif route == "invoke/summary":
                    self._json({"data": {"summary": body["text"][:10]}, "error": ""})
                elif route == "upload/file/request":
                    self._json({"data": {"url": f"http://127.0.0.1:{self.server.server_port}/files/upload"},
                                "error": ""})
                elif self.path == "/files/upload":
                    self._send(201, json.dumps({"id": "file-1", "name": "a.txt", "size": 3, "extension": "txt",
                                                "mime_type": "text/plain"}).encode(), "application/json")
                elif route == "invoke/question-classifier":
                    self._json({"data": {"class_name": "greeting"}, "error": ""})
                else:
                    self._send(404, b"{}", "application/json")

            @staticmethod
            def _llm(body: dict[str, Any]) -> Iterable[dict[str, Any]] | dict[str, str]:
                if body.get("provider") != "tester/oai/oai":
                    return {"error": f"Provider {body.get('provider')} does not exist."}
                return [llm_chunk(body["model"], "from"), llm_chunk(body["model"], " the host", finish=True)]

            def _encrypt(self, body: dict[str, Any]) -> dict[str, Any]:
                secrets = {c["name"] for c in body.get("config") or [] if c.get("type") == "secret-input"}
                data = dict(body.get("data") or {})
                if body["opt"] == "clear":
                    host.cleared.append(body["identity"])
                    return {"data": {"data": {}}, "error": ""}
                try:
                    for name in secrets & set(data):
                        data[name] = seal(data[name]) if body["opt"] == "encrypt" else unseal(data[name])
                except ValueError as exc:
                    return {"data": None, "error": str(exc)}
                return {"data": {"data": data}, "error": ""}

            def _stream(self, chunks: Iterable[dict[str, Any]] | dict[str, str]) -> None:
                if isinstance(chunks, dict):  # an error raised by the generator: one last frame with it
                    payload = frame({"data": None, "error": chunks["error"]})
                else:
                    payload = b"".join(frame({"data": chunk, "error": ""}) for chunk in chunks)
                self._send(200, payload, "text/event-stream")

            def _json(self, answer: dict[str, Any]) -> None:
                self._send(200, json.dumps(answer).encode(), "application/json")

            def _send(self, status: int, payload: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def requests_to(self, route: str) -> list[dict[str, Any]]:
        return [body for path, body in self.calls if path == "/inner/api/" + route]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
