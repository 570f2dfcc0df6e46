"""What a migration did (or, in a dry run, would do) with every item: counted, and each skip with its reason.

Kinds are the four things carried over: ``package``, ``installation``, ``endpoint`` and ``storage`` (one
key of a plugin's key-value store). An item is ``created``, ``unchanged`` (the plugdock home holds it
already, as it is), or ``skipped`` with a reason. Skips ``by_design`` (remote-debugging installations,
which end with their session) are listed but do not make the command fail.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Kind = Literal["package", "installation", "endpoint", "storage"]
KINDS: tuple[Kind, ...] = ("package", "installation", "endpoint", "storage")
LABELS = {"package": "packages", "installation": "installations", "endpoint": "endpoints", "storage": "storage keys"}


class Counts(BaseModel):
    created: int = 0
    unchanged: int = 0
    skipped: int = 0


def _zero() -> dict[str, Counts]:
    return {kind: Counts() for kind in KINDS}


class Skipped(BaseModel):
    kind: Kind
    item: str
    reason: str
    by_design: bool = False


class Report(BaseModel):
    dry_run: bool = False
    counts: dict[str, Counts] = Field(default_factory=_zero)
    skipped: list[Skipped] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    def created(self, kind: Kind, count: int = 1) -> None:
        self.counts[kind].created += count

    def unchanged(self, kind: Kind, count: int = 1) -> None:
        self.counts[kind].unchanged += count

    def skip(self, kind: Kind, item: str, reason: str, by_design: bool = False) -> None:
        self.counts[kind].skipped += 1
        self.skipped.append(Skipped(kind=kind, item=item, reason=reason, by_design=by_design))

    @property
    def changed(self) -> bool:
        """Whether anything was (or, in a dry run, would be) written."""
        return any(counts.created for counts in self.counts.values())

    @property
    def failures(self) -> list[Skipped]:
        """Skips that need the operator's attention."""
        return [s for s in self.skipped if not s.by_design]

    def lines(self) -> list[str]:
        """The report as the command prints it: one line per kind, each skip, each warning, then the outcome."""
        verb = "would create" if self.dry_run else "created"
        out = [f"{LABELS[kind]:<14} {verb} {c.created}, unchanged {c.unchanged}, skipped {c.skipped}"
               for kind, c in self.counts.items()]
        out += [f"skipped {s.kind} {s.item}: {s.reason}" for s in self.skipped]
        out += [f"warning: {w}" for w in self.warnings]
        if self.dry_run:
            out.append("dry run: nothing was written" + ("" if self.changed else "; there is nothing to import"))
        elif not self.changed:
            out.append("nothing changed: the plugdock home already holds everything that can be imported")
        return out
