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
    assert "results written to" in proc.stderr
