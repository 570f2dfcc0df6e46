"""Daemon benchmarks: dispatch over HTTP, streaming models, installs, scale and reverse calls, each against a
baseline measured in the same run (a bare uvicorn echo, the loopback API itself, uv alone...)."""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bench.environments import REPO
from bench.fake_openai import API_KEY, OPENAI_LLM
from bench.servers import KEY, ApiServer, Daemon, EchoServer, load
from bench.stats import Figure, percentile
from plugdock.cli.templates import PluginAnswers, render_plugin

EXAMPLES = REPO / "examples"
TOOL_CALL = {
    "user_id": "u",
    "data": {"provider": "echo_tool", "tool": "echo_tool", "credentials": {}, "tool_parameters": {"text": "hi"}},
}


def grant_storage_and_llm(root: Path) -> None:
    """Turn on the storage and LLM permissions in a scaffolded plugin's manifest."""
    manifest = root / "manifest.yaml"
    manifest.write_text(
        manifest.read_text()
        .replace("    storage:\n      enabled: false", "    storage:\n      enabled: true")
        .replace("    tool:\n      enabled: true",
                 "    tool:\n      enabled: true\n    model:\n      enabled: true\n      llm: true")
    )


def _plugin(kind: str, name: str, method: str = "predefined") -> Path:
    root = Path(tempfile.mkdtemp(prefix="plugdock-bench-plugin-")) / name
    render_plugin(PluginAnswers(kind=kind, name=name, author="bench", description="bench", model_method=method), root)
    return root


def dispatch(quick: bool) -> list[Figure]:
    """A tool call over HTTP through plugdock serve, against a bare uvicorn JSON echo, at 1/16/64 in flight."""
    daemon, echo = Daemon(), EchoServer()
    figures = []
    try:
        daemon.install(EXAMPLES / "echo_tool")
        total = 60 if quick else 600
        for concurrency in (1, 16, 64):
            for subject, url, headers in (
                (
                    "plugdock daemon",
                    f"{daemon.url}/plugin/t1/dispatch/tool/invoke",
                    {"X-Api-Key": KEY, "X-Plugin-ID": "plugdock/echo_tool"},
                ),
                ("uvicorn echo", f"{echo.url}/echo", {}),
            ):
                asyncio.run(load(url, TOOL_CALL, headers, min(total, 50), concurrency))  # warm up
                latencies, elapsed, _ = asyncio.run(load(url, TOOL_CALL, headers, total, concurrency))
                figures.append(
                    Figure(f"dispatch throughput (c={concurrency})", subject, "req/s", [len(latencies) / elapsed])
                )
                figures.append(Figure(f"dispatch p99 (c={concurrency})", subject, "ms", [percentile(latencies, 99)]))
    finally:
        daemon.stop()
        echo.stop()
    return figures


def streaming_models(quick: bool) -> list[Figure]:
    """100 concurrent streaming LLM calls through a model plugin, against a loopback API streaming 100 chunks;
    the same calls made straight to the API are the physical limit."""
    api = ApiServer()
    daemon = Daemon(PLUGDOCK_PLUGIN_NETWORK_ALLOW=f"127.0.0.1:{api.port}")  # plugins call the loopback API
    calls, chunks = (20, 20) if quick else (100, 100)
    try:
        model = _plugin("model", "oai", "customizable")
        (model / "models" / "llm" / "llm.py").write_text(OPENAI_LLM)
        daemon.install(model)
        daemon.client.post(
            "/plugin/t1/management/credentials",
            json={
                "plugin_id": "bench/oai",
                "provider": "oai",
                "credentials": {"endpoint_url": api.url, "api_key": API_KEY},
            },
        )
        body = {
            "user_id": "u",
            "data": {
                "provider": "oai",
                "model_type": "llm",
                "model": "m",
                "credentials": {"endpoint_url": api.url, "api_key": API_KEY},
                "prompt_messages": [{"role": "user", "content": "q"}],
                "model_parameters": {"n_chunks": chunks},
                "tools": [],
                "stop": [],
                "stream": True,
            },
        }
        headers = {"X-Api-Key": KEY, "X-Plugin-ID": "bench/oai"}
        url = f"{daemon.url}/plugin/t1/dispatch/llm/invoke"
        asyncio.run(load(url, body, headers, 5, 5))
        _, elapsed, lines = asyncio.run(load(url, body, headers, calls, calls))
        direct_body = {"model": "m", "stream": True, "n_chunks": chunks, "messages": [{"role": "user", "content": "q"}]}
        _, direct_elapsed, direct_lines = asyncio.run(
            load(f"{api.url}/chat/completions", direct_body, {"Authorization": f"Bearer {API_KEY}"}, calls, calls)
        )
        return [
            Figure("streaming LLM ms/op", "plugdock daemon", "ms", [elapsed * 1000 / calls]),
            Figure("streaming LLM ms/op", "API direct", "ms", [direct_elapsed * 1000 / calls]),
            Figure("streaming LLM ms/op", "official CI figure", "ms", [138.0]),
            Figure("streaming LLM chunks/s", "plugdock daemon", "chunks/s", [lines / elapsed]),
            Figure("streaming LLM chunks/s", "API direct", "chunks/s", [direct_lines / direct_elapsed]),
        ]
    finally:
        daemon.stop()
        api.close()


def install(quick: bool) -> list[Figure]:
    """A package with real dependencies: first install (new environment) against uv installing the same
    requirements alone; a second package with the same dependencies; a reinstall after a restart."""
    from bench.environments import find_python
    from plugdock.packaging.build import build_package

    first_plugin = _plugin("tool", "deps_a")
    (first_plugin / "requirements.txt").write_text("plugdock>=0.1\nhttpx>=0.27\npydantic>=2.6\n")
    second_plugin = _plugin("tool", "deps_b")
    (second_plugin / "requirements.txt").write_text((first_plugin / "requirements.txt").read_text())
    home = Path(tempfile.mkdtemp(prefix="plugdock-bench-home-"))
    # uv alone installs what the package holds: its requirements.txt and the plugdock-sdk wheel it carries
    unpacked = Path(tempfile.mkdtemp(prefix="plugdock-bench-unpacked-"))
    zipfile.ZipFile(io.BytesIO(build_package(first_plugin).data)).extractall(unpacked)
    daemon = Daemon(home)
    try:
        _, first = daemon.install(first_plugin)
        _, second = daemon.install(second_plugin)
    finally:
        daemon.stop()
    restarted = Daemon(home)
    try:
        _, again = restarted.install(first_plugin, tenant="t2")
    finally:
        restarted.stop()
    venv = Path(tempfile.mkdtemp(prefix="plugdock-bench-uv-")) / "venv"
    uv = [sys.executable, "-m", "uv"]
    started = time.perf_counter()
    subprocess.run([*uv, "venv", "-q", "--seed", "-p", str(find_python("3.12")), str(venv)], check=True)
    cmd = [
        *uv,
        "pip",
        "install",
        "-q",
        "--compile-bytecode",
        "--python",
        str(venv / "bin" / "python"),
        "-r",
        "requirements.txt",
    ]
    subprocess.run(cmd, check=True, cwd=unpacked)
    uv_alone = time.perf_counter() - started
    shutil.rmtree(venv.parent, ignore_errors=True)
    shutil.rmtree(unpacked, ignore_errors=True)
    return [
        Figure("install: first (new environment)", "plugdock daemon", "s", [first]),
        Figure("install: first (new environment)", "uv alone", "s", [uv_alone]),
        Figure("install: second package, same deps", "plugdock daemon", "s", [second]),
        Figure("install: again after restart", "plugdock daemon", "s", [again]),
    ]


def _renamed_copies(source: Path, count: int, prefix: str, official: bool) -> list[Path]:
    """``count`` copies of a plugin under distinct plugin names (the official ones ported to dify_plugin)."""
    from plugdock.sdk.compat import port_source

    work = Path(tempfile.mkdtemp(prefix="plugdock-bench-scale-"))
    copies = []
    for index in range(count):
        folder = work / f"{prefix}{index}"
        shutil.copytree(source, folder)
        manifest = folder / "manifest.yaml"
        manifest.write_text(manifest.read_text().replace("name: echo_tool", f"name: {prefix}{index}", 1))
        if official:
            for path in folder.rglob("*.py"):
                path.write_text(port_source(path.read_text(), to="dify")[0])
            (folder / "requirements.txt").write_text("dify-plugin>=0.10,<0.11\n")
        copies.append(folder)
    return copies


def scale(quick: bool) -> list[Figure]:
    """10/50/100 installed plugins, half plugdock, half official SDK: daemon RSS, plugin RSS once every plugin
    ran (lazy start) and after idle stop, and the first call of a cold plugin of each SDK."""
    sizes = (4,) if quick else (10, 50, 100)
    figures = []
    for count in sizes:
        daemon = Daemon(PLUGDOCK_IDLE_STOP_AFTER="5")
        try:
            ours = _renamed_copies(EXAMPLES / "echo_tool", count // 2, "ours", official=False)
            theirs = _renamed_copies(EXAMPLES / "echo_tool", count - count // 2, "theirs", official=True)
            for folder in ours + theirs:
                daemon.install(folder)
            figures.append(Figure(f"scale {count}: daemon RSS, none started", "plugdock daemon", "MiB", [daemon.rss()]))
            cold: dict[str, list[float]] = {"plugdock": [], "official SDK": []}
            for subject, folders in (("plugdock", ours), ("official SDK", theirs)):
                for folder in folders:
                    started = time.perf_counter()
                    response = daemon.client.post(
                        "/plugin/t1/dispatch/tool/invoke",
                        headers={"X-Plugin-ID": f"plugdock/{folder.name}"},
                        json=TOOL_CALL,
                    )
                    if '"code": 0' not in response.text and '"code":0' not in response.text:
                        raise RuntimeError(f"{folder.name}: {response.text[:300]}")
                    cold[subject].append((time.perf_counter() - started) * 1000)
            for subject, samples in cold.items():
                figures.append(Figure(f"scale {count}: first call of a cold plugin", subject, "ms", samples))
            figures.append(Figure(f"scale {count}: daemon RSS, all started", "plugdock daemon", "MiB", [daemon.rss()]))
            figures.append(
                Figure(f"scale {count}: plugins RSS, all started", "plugdock daemon", "MiB", [daemon.plugin_rss()])
            )
            deadline = time.monotonic() + 60
            while daemon.plugin_count() and time.monotonic() < deadline:
                time.sleep(0.5)
            figures.append(
                Figure(f"scale {count}: plugins RSS after idle stop", "plugdock daemon", "MiB", [daemon.plugin_rss()])
            )
        finally:
            daemon.stop()
    return figures


REVERSE_TOOL = """
import time

import httpx
from plugdock.sdk import Tool
from plugdock.sdk.model import UserPromptMessage


class T(Tool):
    def _invoke(self, tool_parameters):
        n, api = int(tool_parameters["n"]), tool_parameters["api"]
        timings = {}
        started = time.perf_counter()
        for _ in range(n):
            self.session.storage.set("k", b"v")
        timings["storage set"] = (time.perf_counter() - started) / n
        model = {"provider": "bench/oai/oai", "model": "m", "model_type": "llm", "mode": "chat",
                 "completion_params": {}}
        started = time.perf_counter()
        for _ in range(n):
            text = "".join(c.delta.message.content for c in self.session.model.llm.invoke(
                model_config=model, prompt_messages=[UserPromptMessage(content="q")]))
        timings["llm via daemon"] = (time.perf_counter() - started) / n
        with httpx.Client() as client:
            started = time.perf_counter()
            for _ in range(n):
                with client.stream("POST", api + "/chat/completions", headers={"Authorization": "Bearer sk-test"},
                                   json={"model": "m", "stream": True, "messages": [{"role": "user",
                                                                                     "content": "q"}]}) as r:
                    for _line in r.iter_lines():
                        pass
            timings["llm direct"] = (time.perf_counter() - started) / n
        yield self.create_json_message({"timings": timings, "text": text})
"""


def reverse(quick: bool) -> list[Figure]:
    """A tool calling back into the daemon: storage writes, and an LLM call through the daemon to a model plugin
    and on to the loopback API, against the same LLM call made straight from the tool."""
    api = ApiServer()
    daemon = Daemon(PLUGDOCK_PLUGIN_NETWORK_ALLOW=f"127.0.0.1:{api.port}")  # plugins call the loopback API
    try:
        model = _plugin("model", "oai", "customizable")
        (model / "models" / "llm" / "llm.py").write_text(OPENAI_LLM)
        daemon.install(model)
        daemon.client.post(
            "/plugin/t1/management/credentials",
            json={
                "plugin_id": "bench/oai",
                "provider": "oai",
                "credentials": {"endpoint_url": api.url, "api_key": API_KEY},
            },
        )
        root = _plugin("tool", "rev")
        (root / "tools" / "rev.py").write_text(REVERSE_TOOL)
        (root / "requirements.txt").write_text("plugdock>=0.1\nhttpx>=0.27\n")
        grant_storage_and_llm(root)
        daemon.install(root)
        figures: dict[str, Figure] = {}
        for _ in range(1 if quick else 3):
            response = daemon.client.post(
                "/plugin/t1/dispatch/tool/invoke",
                headers={"X-Plugin-ID": "bench/rev"},
                json={
                    "user_id": "u",
                    "data": {
                        "provider": "rev",
                        "tool": "rev",
                        "credentials": {},
                        "tool_parameters": {"n": 10 if quick else 100, "api": api.url},
                    },
                },
            )
            import json

            event = json.loads(response.text.split("data: ", 1)[1])
            if event["code"] != 0:
                raise RuntimeError(f"reverse benchmark tool failed: {event}")
            for name, seconds in event["data"]["message"]["json_object"]["timings"].items():
                measure, subject = (
                    ("reverse: LLM call", "through the daemon")
                    if name == "llm via daemon"
                    else ("reverse: LLM call", "direct from the plugin")
                    if name == "llm direct"
                    else ("reverse: storage set", "through the daemon")
                )
                figures.setdefault(name, Figure(measure, subject, "ms")).samples.append(seconds * 1000)
        return [*figures.values(), _storage_in_process(10 if quick else 100)]
    finally:
        daemon.stop()
        api.close()


def _storage_in_process(n: int) -> Figure:
    """The same storage write made by the daemon's store directly: what a reverse call adds is the rest."""
    from plugdock.daemon.state.db import Database, migrate
    from plugdock.daemon.state.kvstore import KVStore

    folder = Path(tempfile.mkdtemp(prefix="plugdock-bench-kv-"))
    db = Database(f"sqlite:///{folder}/kv.db")
    migrate(db.engine)
    store = KVStore(db)
    store.set("t", "p", "k", b"v", 1 << 20)
    started = time.perf_counter()
    for _ in range(n):
        store.set("t", "p", "k", b"v", 1 << 20)
    db.close()
    shutil.rmtree(folder, ignore_errors=True)
    return Figure("reverse: storage set", "store called in-process", "ms", [(time.perf_counter() - started) / n * 1000])
