"""A fake Dify API server: the inner API routes the daemon calls for apps, nodes, file upload and summaries."""

from __future__ import annotations

import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INNER_KEY = "inner-secret"


def frame(payload: dict[str, Any]) -> bytes:
    """The host's length-prefixed stream frame: magic, reserved, header length, header, JSON payload."""
    data = json.dumps(payload).encode()
    header = struct.pack("<I", len(data)) + b"\0" * 6
    return bytes([0x0F, 0x00]) + struct.pack("<H", len(header)) + header + data


class FakeHost:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = json.loads(raw) if self.path.startswith("/inner/") else {"raw": len(raw)}
                host.calls.append((self.path, body))
                if self.path.startswith("/inner/") and self.headers.get("X-Inner-Api-Key") != INNER_KEY:
                    self._send(401, b'{"error": "unauthorized"}', "application/json")
                elif self.path == "/inner/api/invoke/app":
                    frames = b"".join(frame({"data": {"event": "message", "answer": word}, "error": ""})
                                      for word in ("hello", " from", " the app"))
                    self._send(200, frames, "application/octet-stream")
                elif self.path == "/inner/api/invoke/summary":
                    self._send(200, json.dumps({"data": {"summary": body["text"][:10]}, "error": ""}).encode(),
                               "application/json")
                elif self.path == "/inner/api/upload/file/request":
                    url = f"http://127.0.0.1:{self.server.server_port}/files/upload"
                    self._send(200, json.dumps({"data": {"url": url}, "error": ""}).encode(), "application/json")
                elif self.path == "/files/upload":
                    self._send(201, json.dumps({"id": "file-1", "name": "a.txt", "size": 3, "extension": "txt",
                                                "mime_type": "text/plain"}).encode(), "application/json")
                elif self.path == "/inner/api/invoke/question-classifier":
                    self._send(200, json.dumps({"data": {"class_name": "greeting"}, "error": ""}).encode(),
                               "application/json")
                else:
                    self._send(404, b"{}", "application/json")

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

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
