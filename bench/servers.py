"""Processes the daemon benchmarks start: a plugdock daemon, a bare uvicorn echo, a loopback LLM API."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from plugdock.packaging.build import build_package

KEY = "bench-key"

ECHO_APP = """
import json
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route


async def echo(request):
    body = await request.body()
    return Response(b"data: " + json.dumps({"code": 0, "message": "success", "data": json.loads(body or b"{}")}
                                          ).encode() + b"\\n\\n", media_type="text/event-stream")

app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class Daemon:
    def __init__(self, home: Path | None = None, **env: str) -> None:
        self.home = home or Path(tempfile.mkdtemp(prefix="plugdock-bench-home-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "PLUGDOCK_HOME": str(self.home),
            "SERVER_KEY": KEY,
            "SERVER_PORT": str(self.port),
            "FORCE_VERIFYING_SIGNATURE": "false",
            "PLUGIN_REMOTE_INSTALLING_PORT": "0",
            **env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "plugdock", "serve"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_http(f"{self.url}/health/check")
        self.client = httpx.Client(base_url=self.url, headers={"X-Api-Key": KEY}, timeout=600)

    def install(self, folder: Path, tenant: str = "t1") -> tuple[str, float]:
        started = time.perf_counter()
        package = build_package(folder).data
        uploaded = self.client.post(
            f"/plugin/{tenant}/management/install/upload/package", files={"dify_pkg": ("p.difypkg", package)}
        ).json()["data"]
        task = self.client.post(
            f"/plugin/{tenant}/management/install/identifiers",
            json={"plugin_unique_identifiers": [uploaded["unique_identifier"]], "source": "bench"},
        ).json()["data"]
        while task.get("task_id"):
            status = self.client.get(f"/plugin/{tenant}/management/install/tasks/{task['task_id']}").json()["data"]
            if status["status"] == "success":
                break
            if status["status"] == "failed":
                raise RuntimeError(status["plugins"][0]["message"])
            time.sleep(0.05)
        return uploaded["unique_identifier"], time.perf_counter() - started

    def rss(self) -> float:
        from bench.stats import memory_of

        return memory_of(self.proc.pid)[0]

    def plugin_rss(self) -> float:
        from bench.stats import memory_of

        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False)
        total = 0.0
        for pid in out.stdout.split():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                total += memory_of(int(pid))[0]
        return total

    def plugin_count(self) -> int:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False)
        return len(out.stdout.split())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _wait_post(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.post(url, json={}, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class ApiServer:
    """The loopback OpenAI-compatible API in a process of its own, so it never shares a GIL with the load."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        code = f"import bench.fake_openai as f; f.serve_forever({self.port})"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=Path(__file__).parent.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_post(f"{self.url}/chat/completions")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


class EchoServer:
    """The baseline: the least an ASGI server can do per request (uvicorn + Starlette, JSON echo as SSE)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="plugdock-bench-echo-"))
        (self.dir / "echo_app.py").write_text(ECHO_APP)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "echo_app:app", "--port", str(self.port), "--log-level", "warning"],
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_post(f"{self.url}/echo")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


async def load(
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    total: int,
    concurrency: int,
) -> tuple[list[float], float, int]:
    """POST ``total`` requests, ``concurrency`` at a time over keep-alive connections; each response read to
    its end. Returns latencies (ms), elapsed seconds and the number of SSE data lines received.

    A bare HTTP/1.1 client on asyncio streams, not httpx: httpx's pool costs milliseconds per request at 64
    connections, which made the load generator, not the servers, the measured limit (seen: a bare uvicorn
    echo at 100 req/s)."""
    import asyncio
    import json as json_module
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload = json_module.dumps(body).encode()
    head = (f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n").encode() + payload
    latencies: list[float] = []
    lines = 0
    queue = iter(range(total))

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(host, port, limit=2**22)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    async def worker() -> None:
        nonlocal lines
        reader, writer = await connect()
        try:
            for _ in queue:
                started = time.perf_counter()
                writer.write(head)
                status, data, close = await _read_response(reader)
                if status != 200:
                    raise RuntimeError(f"{url} answered {status}: {data[:300]!r}")
                lines += sum(1 for line in data.split(b"\n") if line.startswith(b"data:"))
                latencies.append((time.perf_counter() - started) * 1000)
                if close:
                    writer.close()
                    reader, writer = await connect()
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, lines


async def _read_response(reader: Any) -> tuple[int, bytes, bool]:
    """(status, body, whether the server closes the connection) of one HTTP/1.x response."""
    status_line = await reader.readline()
    if not status_line:
        raise RuntimeError("the server closed the connection without an answer")
    status = int(status_line.split()[1])
    length, chunked, close = None, False, status_line.startswith(b"HTTP/1.0")
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection":
            close = value == "close"
    if chunked:
        chunks = []
        while size := int((await reader.readline()).split(b";")[0], 16):
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return status, b"".join(chunks), close
    if length is not None:
        return status, await reader.readexactly(length), close
    return status, await reader.read(), True
