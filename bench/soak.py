"""``python -m bench.soak [--seconds N] [--concurrency N]``: a bounded soak of the daemon on loopback.

Mixed traffic at a steady concurrency — plugdock and official-SDK tools, a streaming LLM through a model
plugin, a tool making reverse calls (storage and LLM), and requests that must fail (unknown plugin,
malformed body) — while the daemon's memory, open files and plugin processes are sampled. Passes when
every request was answered or failed with a named error, nothing grew, and no process outlived the stop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.daemon_benchmarks import EXAMPLES, _plugin, _renamed_copies, grant_storage_and_llm
from bench.fake_openai import API_KEY, OPENAI_LLM
from bench.servers import KEY, ApiServer, Daemon
from plugdock.daemon.plugins.sandbox import home_tag, marked_processes

KEEPER_TOOL = """
from plugdock.sdk import Tool
from plugdock.sdk.model import UserPromptMessage


class T(Tool):
    def _invoke(self, tool_parameters):
        key = "n" + str(tool_parameters.get("slot", 0))
        count = int(self.session.storage.get(key).decode()) + 1 if self.session.storage.exist(key) else 1
        self.session.storage.set(key, str(count).encode())
        model = {"provider": "soak/oai/oai", "model": "m", "model_type": "llm", "mode": "chat", "completion_params": {}}
        text = "".join(c.delta.message.content for c in self.session.model.llm.invoke(
            model_config=model, prompt_messages=[UserPromptMessage(content="q")]))
        yield self.create_json_message({"count": count, "text": text[:20]})
"""


@dataclass
class Tally:
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    samples: list[dict[str, float]] = field(default_factory=list)


def sample(daemon: Daemon, tag: str) -> dict[str, float]:
    return {"t": time.monotonic(), "daemon_rss_mib": daemon.rss(), "plugins_rss_mib": daemon.plugin_rss(),
            "plugin_processes": len(marked_processes(tag)),
            "daemon_open_files": len(os.listdir(f"/proc/{daemon.proc.pid}/fd"))}


def requests(api_url: str) -> list[tuple[str, str, str, dict[str, object], str]]:
    """(kind, route, plugin id, data, expected) — expected is "ok" or "error"."""
    echo = {"provider": "echo_tool", "tool": "echo_tool", "credentials": {}, "tool_parameters": {"text": "soak"}}
    llm = {"provider": "oai", "model_type": "llm", "model": "m", "credentials": {"endpoint_url": api_url,
           "api_key": API_KEY}, "prompt_messages": [{"role": "user", "content": "q"}],
           "model_parameters": {"n_chunks": 20}, "tools": [], "stop": [], "stream": True}
    keeper = {"provider": "keeper", "tool": "keeper", "credentials": {}, "tool_parameters": {"slot": 1}}
    return [
        ("plugdock tool", "tool/invoke", "plugdock/echo_tool", echo, "ok"),
        ("official SDK tool", "tool/invoke", "plugdock/official0", echo, "ok"),
        ("streaming LLM", "llm/invoke", "soak/oai", llm, "ok"),
        ("reverse calls", "tool/invoke", "soak/keeper", keeper, "ok"),
        ("unknown plugin", "tool/invoke", "nobody/nothing", echo, "error"),
        ("malformed body", "tool/invoke", "plugdock/echo_tool", {"provider": 3}, "error"),
    ]


async def one(client: httpx.AsyncClient, url: str, request: tuple[str, str, str, dict[str, object], str],
              tally: Tally) -> None:
    kind, route, plugin_id, data, expected = request
    body = {"user_id": "soak", "data": data} if kind != "malformed body" else {"data": "not an object"}
    try:
        response = await client.post(f"{url}/plugin/t1/dispatch/{route}", json=body,
                                     headers={"X-Api-Key": KEY, "X-Plugin-ID": plugin_id})
    except httpx.HTTPError as exc:
        tally.unexpected.append(f"{kind}: {type(exc).__name__}: {exc}")
        return
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
        failed = [e for e in events if e.get("code") != 0]
        if not events:
            tally.unexpected.append(f"{kind}: an empty stream")
        elif failed:
            message = str(failed[0].get("message", ""))
            (tally.outcomes.update([f"{kind}: named error"]) if expected == "error" and message
             else tally.unexpected.append(f"{kind}: {message[:200]}"))
        else:
            tally.outcomes.update([f"{kind}: ok"]) if expected == "ok" else tally.unexpected.append(
                f"{kind}: succeeded but should have failed")
        return
    try:
        envelope = response.json()
    except ValueError:
        tally.unexpected.append(f"{kind}: {response.status_code} without a JSON body")
        return
    if response.status_code < 500 and expected == "error" and envelope.get("message"):
        tally.outcomes.update([f"{kind}: named error"])
    else:
        tally.unexpected.append(f"{kind}: {response.status_code} {str(envelope)[:200]}")


async def drive(daemon: Daemon, api_url: str, seconds: float, concurrency: int, tally: Tally, tag: str) -> None:
    mix = requests(api_url)
    weights = [30, 20, 20, 20, 5, 5]
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient, seed: int) -> None:
        chooser = random.Random(seed)
        while time.monotonic() < deadline:
            await one(client, daemon.url, chooser.choices(mix, weights)[0], tally)

    async def sampler() -> None:
        while time.monotonic() < deadline:
            tally.samples.append(await asyncio.to_thread(sample, daemon, tag))
            sys.stderr.write(f"\r  {len(tally.samples)} samples, {sum(tally.outcomes.values())} answered, "
                             f"{len(tally.unexpected)} unexpected, daemon RSS {tally.samples[-1]['daemon_rss_mib']:.0f}"
                             " MiB   ")
            await asyncio.sleep(max(1.0, seconds / 60))

    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        await asyncio.gather(sampler(), *(worker(client, seed) for seed in range(concurrency)))
    sys.stderr.write("\n")


def growth(samples: list[dict[str, float]], name: str) -> float:
    """Median of the last quarter minus median of the second quarter (the first is warm-up)."""
    values = [s[name] for s in samples]
    quarter = max(1, len(values) // 4)
    return statistics.median(values[-quarter:]) - statistics.median(values[quarter:2 * quarter] or values)


def verdict(tally: Tally, leftovers: int, installed: int) -> list[str]:
    problems = []
    if tally.unexpected:
        problems.append(f"{len(tally.unexpected)} requests neither answered nor failed by name, e.g. "
                        f"{tally.unexpected[0]}")
    if len(tally.samples) >= 8:
        rss = growth(tally.samples, "daemon_rss_mib")
        baseline = statistics.median(s["daemon_rss_mib"] for s in tally.samples)
        if rss > max(15.0, 0.1 * baseline):
            problems.append(f"daemon RSS grew by {rss:.1f} MiB")
        files = growth(tally.samples, "daemon_open_files")
        if files > 20:
            problems.append(f"daemon open files grew by {files:.0f}")
    if max((s["plugin_processes"] for s in tally.samples), default=0) > installed:
        problems.append("more plugin processes than installed plugins")
    if leftovers:
        problems.append(f"{leftovers} plugin processes outlived the daemon's stop")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=180, help="how long to run the load (default 180)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    args = parser.parse_args()

    sys.stderr.write("setting up: loopback LLM API, daemon, four plugins (plugdock and official SDK)\n")
    api = ApiServer()
    daemon = Daemon(PLUGDOCK_PLUGIN_NETWORK_ALLOW=f"127.0.0.1:{api.port}")  # plugins call the loopback API
    tag = home_tag(daemon.home) + ":"
    tally = Tally()
    try:
        model = _plugin("model", "oai", "customizable")
        (model / "models" / "llm" / "llm.py").write_text(OPENAI_LLM)
        keeper = _plugin("tool", "keeper")
        (keeper / "tools" / "keeper.py").write_text(KEEPER_TOOL)
        grant_storage_and_llm(keeper)
        for folder in (EXAMPLES / "echo_tool", *_renamed_copies(EXAMPLES / "echo_tool", 1, "official", True),
                       model, keeper):
            daemon.install(_as_soak(folder))
        daemon.client.post("/plugin/t1/management/credentials", json={
            "plugin_id": "soak/oai", "provider": "oai", "credentials": {"endpoint_url": api.url, "api_key": API_KEY}})
        sys.stderr.write(f"soaking for {args.seconds:.0f} s at {args.concurrency} in flight\n")
        asyncio.run(drive(daemon, api.url, args.seconds, args.concurrency, tally, tag))
    finally:
        daemon.stop()
        api.close()
    time.sleep(0.5)
    leftovers = len(marked_processes(tag))
    problems = verdict(tally, leftovers, installed=4)
    report = {"seconds": args.seconds, "concurrency": args.concurrency, "outcomes": dict(tally.outcomes),
              "unexpected": tally.unexpected[:50], "samples": tally.samples, "leftover_processes": leftovers,
              "problems": problems}
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    out = results / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=1))
    first, last = tally.samples[0] if tally.samples else {}, tally.samples[-1] if tally.samples else {}
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(tally.outcomes.items()))
    print(f"answered: {sum(tally.outcomes.values())} ({kinds})")
    print(f"unexpected: {len(tally.unexpected)}")
    for name in ("daemon_rss_mib", "plugins_rss_mib", "plugin_processes", "daemon_open_files"):
        print(f"{name}: first {first.get(name, 0):.1f}, last {last.get(name, 0):.1f}")
    print(f"leftover plugin processes after stop: {leftovers}")
    print(f"verdict: {'pass' if not problems else 'FAIL: ' + '; '.join(problems)}  (details in {out})")
    return 0 if not problems else 1


def _as_soak(folder: Path) -> Path:
    """Plugins made by the bench helpers are authored 'bench'; the soak names its own 'soak'."""
    manifest = folder / "manifest.yaml"
    text = manifest.read_text()
    if "author: bench" in text:
        manifest.write_text(text.replace("author: bench", "author: soak"))
        for yaml_file in folder.rglob("*.yaml"):
            yaml_file.write_text(yaml_file.read_text().replace("author: bench", "author: soak"))
    return folder


if __name__ == "__main__":
    sys.exit(main())
