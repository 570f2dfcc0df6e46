"""Small statistics and process measurements shared by the benchmarks."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Figure:
    """One measured quantity for one subject, over repeated runs."""

    name: str
    subject: str
    unit: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "subject": self.subject, "unit": self.unit, "median": self.median,
                "min": min(self.samples), "max": max(self.samples), "runs": len(self.samples)}


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def memory_of(pid: int) -> tuple[float, float]:
    """RSS and USS of a process in MiB (USS from smaps_rollup: memory only this process holds)."""
    rss = uss = 0.0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if parts[0] == "Rss:":
            rss = int(parts[1]) / 1024
        elif parts[0] in ("Private_Clean:", "Private_Dirty:"):
            uss += int(parts[1]) / 1024
    return rss, uss
