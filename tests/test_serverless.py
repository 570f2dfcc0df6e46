"""Serverless mode: the plugin serves ``POST /invoke`` and ``GET /health`` over real HTTP on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from daemon_harness import eventually, free_port

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_invoke_and_health_over_http() -> None:
    port = free_port()
    env = {**os.environ, "INSTALL_METHOD": "serverless", "SERVERLESS_HOST": "127.0.0.1", "SERVERLESS_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "main"], cwd=EXAMPLES / "echo_tool", env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def health() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
            except httpx.TransportError:
                return None

        assert eventually(health, "serverless plugin did not start", every=0.1).text == "OK"
        body = {"session_id": "s1", "event": "request", "data": {
            "user_id": "u", "type": "tool", "action": "invoke_tool", "provider": "echo_tool", "tool": "echo_tool",
            "credentials": {}, "tool_parameters": {"text": "over http"}}}
        response = httpx.post(f"http://127.0.0.1:{port}/invoke", json=body, timeout=10)
        lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
        assert lines[0]["data"]["data"]["message"]["text"] == "over http"
        assert lines[-1]["data"]["type"] == "end"
        bad = httpx.post(f"http://127.0.0.1:{port}/invoke", content=b"not json", timeout=10)
        assert bad.status_code == 400 and "bad request" in bad.text
        assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=10).status_code == 404
    finally:
        proc.kill()
        proc.wait()
