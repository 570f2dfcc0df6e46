"""A test-side daemon stand-in: runs a plugin as a real subprocess and speaks the stdio protocol to it."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any


class PluginProcess:
    def __init__(self, directory: Path, *, python: str = sys.executable, env: dict[str, str] | None = None,
                 command: list[str] | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        full_env.update({"INSTALL_METHOD": "local", **(env or {})})
        self.proc = subprocess.Popen(command or [python, "-m", "main"], cwd=directory, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env)
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.backlog: list[dict[str, Any]] = []  # lines read while waiting for something else
        self.raw: list[bytes] = []
        self.stderr = b""
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.raw.append(line)
            if line.strip():
                try:
                    self.lines.put(json.loads(line))
                except json.JSONDecodeError:
                    self.lines.put({"event": "__not_json__", "text": line.decode(errors="replace")})
        self.lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def send(self, obj: Any) -> None:
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def request(self, data: dict[str, Any], session_id: str | None = None, **envelope: Any) -> str:
        session_id = session_id or uuid.uuid4().hex
        self.send({"session_id": session_id, "conversation_id": None, "message_id": None, "app_id": None,
                   "endpoint_id": None, "context": None, "event": "request",
                   "data": {"user_id": "u1", **data}, **envelope})
        return session_id

    def next_line(self, timeout: float = 10) -> dict[str, Any] | None:
        return self.lines.get(timeout=timeout)

    def wait_for(self, predicate: Any, timeout: float = 15) -> dict[str, Any]:
        """The first line (kept back or new) matching ``predicate``; other lines are kept for later."""
        for index, line in enumerate(self.backlog):
            if predicate(line):
                return self.backlog.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if line is None:
                self.lines.put(None)
                raise AssertionError(f"plugin exited; stderr: {self.stderr.decode(errors='replace')[-2000:]}")
            if predicate(line):
                return line
            self.backlog.append(line)

    def ready(self, timeout: float = 30) -> None:
        self.wait_for(lambda ln: ln.get("event") == "heartbeat", timeout)

    def session(self, session_id: str, timeout: float = 15, answer: Any = None) -> list[dict[str, Any]]:
        """Every session message of ``session_id`` up to and including ``end``; ``answer`` serves invokes."""
        out: list[dict[str, Any]] = []
        while True:
            line = self.wait_for(lambda ln: ln.get("event") == "session" and ln.get("session_id") == session_id,
                                 timeout)
            message = line["data"]
            if message["type"] == "invoke" and answer is not None:
                answer(self, session_id, message["data"])
                continue
            out.append(message)
            if message["type"] == "end":
                return out

    def backwards(self, session_id: str, request_id: str, event: str, data: Any = None, message: str = "") -> None:
        self.send({"session_id": session_id, "conversation_id": None, "message_id": None, "app_id": None,
                   "endpoint_id": None, "context": None, "event": "backwards_response",
                   "data": {"backwards_request_id": request_id, "event": event, "message": message, "data": data}})

    def close(self, timeout: float = 5) -> int | None:
        """Close stdin and wait; a plugin still running after ``timeout`` is killed and ``None`` returned
        (the official SDK keeps running after stdin closes)."""
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def stream_data(messages: list[dict[str, Any]]) -> list[Any]:
    return [m["data"] for m in messages if m["type"] == "stream"]
