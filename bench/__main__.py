"""``python -m bench [--quick] [--only NAME]``: run the benchmarks and print ratios against baselines measured
in the same run; results are also written as JSON under ``bench/results/``."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import daemon_benchmarks, sdk_benchmarks
from bench.stats import Figure

# name -> (function, baseline subject, target description)
BENCHMARKS: dict[str, tuple[Callable[[bool], list[Figure]], str, str]] = {
    "cold_start": (lambda quick: sdk_benchmarks.cold_start(1 if quick else 7), "official SDK", "ratio <= 0.2"),
    "idle_memory": (lambda quick: sdk_benchmarks.idle_memory(1 if quick else 3), "official SDK", "ratio <= 0.5"),
    "stdio_round_trip": (lambda quick: sdk_benchmarks.stdio_round_trip(1 if quick else 3, 100 if quick else 2000),
                         "official SDK", "latency no worse; throughput ratio >= 1.5"),
    "dispatch": (daemon_benchmarks.dispatch, "uvicorn echo", "throughput ratio >= 0.5"),
    "streaming_models": (daemon_benchmarks.streaming_models, "official CI figure", "ms/op ratio <= 0.5"),
    "install": (daemon_benchmarks.install, "uv alone", "first <= 1.2x uv; second < 2 s; after restart: no rebuild"),
    "scale": (daemon_benchmarks.scale, "official SDK", "report; cold first call vs official SDK"),
    "reverse": (daemon_benchmarks.reverse, "direct from the plugin", "report the overhead per reverse call"),
}


def table(figures: list[Figure], baseline: str) -> list[str]:
    rows = []
    base = {f.name: f.median for f in figures if f.subject == baseline}
    for f in figures:
        ratio = f.median / base[f.name] if base.get(f.name) else float("nan")
        rows.append(f"| {f.name} | {f.subject} | {f.median:.2f} {f.unit} | {min(f.samples):.2f} | "
                    f"{max(f.samples):.2f} | {ratio:.2f} |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="one run each, small sizes (what CI runs)")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run only these")
    args = parser.parse_args()
    chosen = args.only or list(BENCHMARKS)
    results: dict[str, object] = {"machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                                              "cpus": __import__("os").cpu_count()},
                                  "quick": args.quick, "benchmarks": {}}
    lines = ["| measure | subject | median | min | max | ratio to baseline |", "|---|---|---|---|---|---|"]
    for index, name in enumerate(chosen, 1):
        function, baseline, target = BENCHMARKS[name]
        sys.stderr.write(f"[{index}/{len(chosen)}] {name} ...\n")
        started = time.perf_counter()
        figures = function(args.quick)
        sys.stderr.write(f"[{index}/{len(chosen)}] {name} done in {time.perf_counter() - started:.1f} s\n")
        lines += table(figures, baseline)
        results["benchmarks"][name] = {"baseline": baseline, "target": target,  # type: ignore[index]
                                       "figures": [f.as_dict() for f in figures]}
    print("\n".join(lines))
    out = Path(__file__).parent / "results" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    sys.stderr.write(f"results written to {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
