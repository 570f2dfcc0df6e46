"""The benchmarks run (once each, small sizes) so they never rot; no timing is asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent


@pytest.mark.slow
def test_bench_quick_runs_and_writes_results() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick"], cwd=REPO, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| cold start | plugdock |" in proc.stdout and "| cold start | official SDK |" in proc.stdout
    for row in ("| dispatch throughput (c=64) | plugdock daemon |", "| streaming LLM ms/op | plugdock daemon |",
                "| install: first (new environment) | uv alone |",
                "| scale 4: first call of a cold plugin | official SDK |",
                "| reverse: LLM call | through the daemon |"):
        assert row in proc.stdout, proc.stdout
    assert "results written to" in proc.stderr


@pytest.mark.slow
def test_a_short_soak_passes() -> None:
    """The soak (``python -m bench.soak``), briefly: mixed traffic answered or failed by name, nothing leaked."""
    proc = subprocess.run([sys.executable, "-m", "bench.soak", "--seconds", "20", "--concurrency", "6"], cwd=REPO,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "verdict: pass" in proc.stdout and "unexpected: 0" in proc.stdout
    assert "leftover plugin processes after stop: 0" in proc.stdout
