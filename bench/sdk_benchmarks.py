"""Plugin-side benchmarks: a trivial tool plugin on plugdock versus the same plugin on the official SDK,
both on Python 3.12, measured in the same run."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bench.environments import REPO, official_python, plugdock_python
from bench.stats import Figure, memory_of, percentile
from plugdock.sdk.compat import port_source

EXAMPLE = REPO / "examples" / "echo_tool"


def plugin_dirs() -> dict[str, tuple[str, Path]]:
    """subject -> (python, plugin folder): the example as is, and ported to the official SDK."""
    work = Path(tempfile.mkdtemp(prefix="plugdock-bench-"))
    official = work / "official"
    shutil.copytree(EXAMPLE, official)
    for path in official.rglob("*.py"):
        path.write_text(port_source(path.read_text(), to="dify")[0])
    return {"plugdock": (plugdock_python(), EXAMPLE), "official SDK": (official_python(), official)}


def _spawn(python: str, folder: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "INSTALL_METHOD": "local"}
    return subprocess.Popen([python, "-m", "main"], cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)


def _until_heartbeat(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if b'"heartbeat"' in line:
            return
    raise RuntimeError("plugin exited before its first heartbeat")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()


def cold_start(runs: int) -> list[Figure]:
    """Spawn to first heartbeat (what the daemon waits for before a plugin is ready)."""
    figures = []
    for subject, (python, folder) in plugin_dirs().items():
        figure = Figure("cold start", subject, "ms")
        for _ in range(runs):
            started = time.perf_counter()
            proc = _spawn(python, folder)
            _until_heartbeat(proc)
            figure.samples.append((time.perf_counter() - started) * 1000)
            _stop(proc)
        figures.append(figure)
    return figures


def idle_memory(runs: int) -> list[Figure]:
    """RSS and USS one second after the plugin is ready, with no request served."""
    figures = []
    for subject, (python, folder) in plugin_dirs().items():
        rss, uss = Figure("idle RSS", subject, "MiB"), Figure("idle USS", subject, "MiB")
        for _ in range(runs):
            proc = _spawn(python, folder)
            _until_heartbeat(proc)
            time.sleep(1.0)
            r, u = memory_of(proc.pid)
            rss.samples.append(r)
            uss.samples.append(u)
            _stop(proc)
        figures += [rss, uss]
    return figures


def _request(session_id: str) -> bytes:
    return (b'{"session_id":"' + session_id.encode() + b'","conversation_id":null,"message_id":null,"app_id":null,'
            b'"endpoint_id":null,"context":null,"event":"request","data":{"user_id":"u","type":"tool",'
            b'"action":"invoke_tool","provider":"echo_tool","tool":"echo_tool","credentials":{},'
            b'"tool_parameters":{"text":"hi"}}}\n')


def _drive(proc: subprocess.Popen[bytes], total: int, in_flight: int) -> list[float]:
    """Send ``total`` requests keeping ``in_flight`` outstanding; return each one's latency in ms."""
    assert proc.stdin is not None and proc.stdout is not None
    sent: dict[str, float] = {}
    latencies: list[float] = []
    pending = 0
    next_id = 0

    def send_one() -> None:
        nonlocal pending, next_id
        sid = f"{next_id}-{uuid.uuid4().hex[:8]}"
        next_id += 1
        sent[sid] = time.perf_counter()
        proc.stdin.write(_request(sid))  # type: ignore[union-attr]
        pending += 1

    while next_id < min(in_flight, total):
        send_one()
    proc.stdin.flush()
    for line in proc.stdout:
        if b'"type":"end"' not in line:
            continue
        start = line.index(b'"session_id":"') + 14
        sid = line[start : line.index(b'"', start)].decode()
        latencies.append((time.perf_counter() - sent.pop(sid)) * 1000)
        pending -= 1
        if next_id < total:
            send_one()
            proc.stdin.flush()
        if pending == 0:
            break
    return latencies


def stdio_round_trip(runs: int, requests: int) -> list[Figure]:
    """Latency (p50/p99) and throughput of tool calls over stdio, with 1 and 64 requests in flight."""
    figures = []
    for subject, (python, folder) in plugin_dirs().items():
        for in_flight in (1, 64):
            p50 = Figure(f"stdio p50 ({in_flight} in flight)", subject, "ms")
            p99 = Figure(f"stdio p99 ({in_flight} in flight)", subject, "ms")
            rate = Figure(f"stdio throughput ({in_flight} in flight)", subject, "req/s")
            for _ in range(runs):
                proc = _spawn(python, folder)
                _until_heartbeat(proc)
                _drive(proc, min(50, requests), in_flight)  # warm up
                started = time.perf_counter()
                latencies = _drive(proc, requests, in_flight)
                elapsed = time.perf_counter() - started
                _stop(proc)
                p50.samples.append(percentile(latencies, 50))
                p99.samples.append(percentile(latencies, 99))
                rate.samples.append(len(latencies) / elapsed)
            figures += [p50, p99, rate]
    return figures
