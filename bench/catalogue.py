"""``python -m bench.catalogue``: validate and package every plugin of langgenius/dify-official-plugins.

The official catalogue is the ground truth for what plugdock must accept: each folder with a ``manifest.yaml``
two levels down (``tools/<name>``, ``models/<name>``, ...) is extracted from a bare mirror at a fixed commit,
then run through the three gates an operator meets — ``plugdock validate``, ``plugdock package`` and the
checks the daemon's upload applies to the package built (the package read back through the same loader). The
full sweep is a script, not a test: CI has no GitHub access, and the suite keeps a small synthetic copy of each
pattern (tests/test_official_patterns.py).

A blob the mirror lacks (bare mirrors may leave their largest files out) is written as a stub that says so, and
the summary lists every stub, so a missing file never passes for a plugin bug.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.catalogue_install import Installed, install_all, install_report
from plugdock.errors import PlugdockError, ValidationFailed
from plugdock.packaging.archive import ArchiveSource, PackageArchive
from plugdock.packaging.build import build_package
from plugdock.packaging.ignore import ignore_filter
from plugdock.schema.plugin import DirectorySource, load_plugin
from plugdock.schema.problems import Problem

MIRROR = Path("/work/.mirror/langgenius+dify-official-plugins/repo")
COMMIT = "7af22831"  # the commit issue 16 names; the sweep's 262 plugins
STUB = b"# plugdock bench.catalogue: this file's blob is absent from the mirror; stub written in its place\n"


@dataclass
class Outcome:
    plugin: str
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    package: str = ""  # "" when packaging succeeded, else why it failed
    upload: str = ""  # "" when the daemon's upload checks passed, else why not
    size: int = 0
    data: bytes = field(default=b"", repr=False)  # the package built, for the install sweep

    @property
    def ok(self) -> bool:
        return not self.errors and not self.package and not self.upload


def _git(repo: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], input=data, capture_output=True, check=True).stdout


def resolve_commit(repo: Path, commit: str) -> str:
    """The full hash of ``commit`` if the mirror has it, else of HEAD (the caller reports which)."""
    probe = subprocess.run(["git", "-C", str(repo), "cat-file", "-t", commit], capture_output=True, check=False)
    target = commit if probe.returncode == 0 and probe.stdout.strip() == b"commit" else "HEAD"
    return _git(repo, "rev-parse", target).decode().strip()


def plugin_folders(repo: Path, commit: str) -> list[str]:
    names = _git(repo, "ls-tree", "-r", "--name-only", commit).decode().splitlines()
    return sorted(n.rsplit("/", 1)[0] for n in names if n.count("/") == 2 and n.endswith("/manifest.yaml"))


def extract(repo: Path, commit: str, dest: Path, folders: list[str]) -> list[str]:
    """Write ``folders`` (and the repository's top-level files, which links may point at) under ``dest``.

    Returns the paths written as stubs because the mirror lacks their blob.
    """
    rows: list[tuple[str, str, str]] = []  # (mode, sha, path)
    listing = _git(repo, "ls-tree", "-r", "-z", commit, "--", *folders).split(b"\0")
    top = _git(repo, "ls-tree", "-z", commit).split(b"\0")
    for raw in [*listing, *top]:
        if not raw:
            continue
        meta, path = raw.decode().split("\t", 1)
        mode, kind, sha = meta.split()
        if kind == "blob":
            rows.append((mode, sha, path))
    batch = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch"], capture_output=True, check=True,
                           input="".join(f"{sha}\n" for _, sha, _ in rows).encode()).stdout
    stubs: list[str] = []
    offset = 0
    for mode, _sha, path in rows:
        end = batch.index(b"\n", offset)
        header = batch[offset:end].split()
        offset = end + 1
        if header[-1] == b"missing":
            content, missing = STUB, True
        else:
            size = int(header[2])
            content, missing = batch[offset:offset + size], False
            offset += size + 1
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == "120000" and not missing:
            target.symlink_to(content.decode())
            continue
        if missing:
            stubs.append(path)
        target.write_bytes(content)
    return stubs


def check_plugin(root: Path, name: str) -> Outcome:
    """The three gates: validate (as the CLI reads a folder), package, and the daemon upload's checks."""
    out = Outcome(name)
    plugin = load_plugin(DirectorySource(root, exclude=ignore_filter(root)))
    out.errors = [p for p in plugin.problems if p.is_error]
    out.warnings = [p for p in plugin.problems if not p.is_error]
    try:
        built = build_package(root)
    except ValidationFailed as exc:
        out.package = str(exc)
        return out
    except PlugdockError as exc:
        out.package = str(exc)
        return out
    out.size, out.data = len(built.data), built.data
    try:
        uploaded = load_plugin(ArchiveSource(PackageArchive.open(built.data)))
    except PlugdockError as exc:
        out.upload = str(exc)
        return out
    if not uploaded.ok:
        out.upload = "; ".join(str(p) for p in uploaded.errors[:3])
    return out


def _warning_kind(problem: Problem) -> str:
    """A short family name for a warning, for the summary's counts."""
    words = problem.message.split("(")[0].split(";")[0]
    return " ".join(words.split()[:6])


def report(outcomes: list[Outcome], stubs: list[str], commit: str, verbose: bool) -> list[str]:
    lines = [f"official catalogue at {commit[:12]}: {len(outcomes)} plugins", "",
             "| plugin | validate | package | upload checks | warnings |", "|---|---|---|---|---|"]
    for o in outcomes:
        if o.ok and not verbose:
            continue
        validate = "ok" if not o.errors else f"{len(o.errors)} error(s): {o.errors[0]}"
        lines.append(f"| {o.plugin} | {validate} | {'ok' if not o.package else o.package[:160]} | "
                     f"{'ok' if not o.upload else o.upload[:160]} | {len(o.warnings)} |")
    valid = sum(not o.errors for o in outcomes)
    packed = sum(not o.package for o in outcomes)
    uploaded = sum(not o.package and not o.upload for o in outcomes)
    kinds = Counter(_warning_kind(w) for o in outcomes for w in o.warnings)
    lines += ["", f"validate: {valid}/{len(outcomes)}   package: {packed}/{len(outcomes)}   "
              f"upload checks: {uploaded}/{len(outcomes)}",
              f"warnings: {sum(kinds.values())} in {sum(bool(o.warnings) for o in outcomes)} plugins; most common:"]
    lines += [f"  {count:5d}  {kind}" for kind, count in kinds.most_common(12)]
    if stubs:
        lines += [f"blobs absent from the mirror, written as stubs: {', '.join(stubs)}"]
    return lines


def graphon_sweep(dest: Path, folders: list[str]) -> list[str]:
    """Every model provider as plugdock serves it, validated by Dify's ``graphon`` entities (the suite's harness)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from bench.environments import _venv
    from plugdock.schema.declaration import plugin_declaration
    from test_model_declarations import GRAPHON, graphon_check  # the harness of the contract tests

    python = _venv("graphon-0.5.1-venv", [GRAPHON], "import graphon.model_runtime.entities.provider_entities")
    names, providers = [], []
    for folder in folders:
        plugin = load_plugin(DirectorySource(dest / folder, exclude=ignore_filter(dest / folder)))
        if plugin.ok and plugin.model_provider is not None:
            names.append(folder)
            providers.append(plugin_declaration(plugin)["model"])
    results = graphon_check(python, providers)
    refused = [f"  {name}: {'; '.join(r['errors'][:3])}" for name, r in zip(names, results, strict=True)
               if r["errors"]]
    return [f"graphon==0.5.1 ProviderEntity accepts {len(names) - len(refused)}/{len(names)} model providers",
            *refused]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.catalogue", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirror", type=Path, default=MIRROR, help="bare git mirror of dify-official-plugins")
    parser.add_argument("--commit", default=COMMIT, help="commit to sweep (HEAD when the mirror lacks it)")
    parser.add_argument("--only", action="append", default=[], help="sweep only these folders (e.g. tools/fal)")
    parser.add_argument("--keep", type=Path, help="extract here and keep it (default: a temporary folder)")
    parser.add_argument("--verbose", "-v", action="store_true", help="list every plugin, not only failures")
    parser.add_argument("--json", type=Path, help="also write every outcome, with its warnings, as JSON")
    parser.add_argument("--install", action="store_true",
                        help="also install and start every package in a daemon (PyPI; about an hour when cold)")
    parser.add_argument("--install-home", type=Path, default=Path("/var/tmp/plugdock-catalogue"),
                        help="the install sweep's daemon home, kept so a rerun reuses its environments")
    parser.add_argument("--jobs", type=int, default=2, help="installs at once in the install sweep")
    parser.add_argument("--graphon", action="store_true",
                        help="also validate every served model declaration with graphon==0.5.1 (needs PyPI once)")
    args = parser.parse_args(argv)
    commit = resolve_commit(args.mirror, args.commit)
    if not commit.startswith(args.commit):
        sys.stderr.write(f"{args.mirror} has no commit {args.commit}; sweeping HEAD ({commit[:12]})\n")
    folders = [f for f in plugin_folders(args.mirror, commit) if not args.only or f in args.only]
    with tempfile.TemporaryDirectory(prefix="plugdock-catalogue-") as scratch:
        dest = args.keep or Path(scratch)
        dest.mkdir(parents=True, exist_ok=True)
        stubs = extract(args.mirror, commit, dest, folders)
        outcomes = []
        for index, folder in enumerate(folders, 1):
            sys.stderr.write(f"\r[{index}/{len(folders)}] {folder:<60}")
            outcomes.append(check_plugin(dest / folder, folder))
        sys.stderr.write("\n")
        lines = report(outcomes, stubs, commit, args.verbose)
        contract = graphon_sweep(dest, folders) if args.graphon else []
    installed: list[Installed] = []
    if args.install:
        installed = install_all(args.install_home, [(o.plugin, o.data) for o in outcomes if o.data], args.jobs)
        lines += install_report(installed, stubs)
    print("\n".join([*lines, *contract]))
    if args.json:
        args.json.write_text(json.dumps([{"plugin": o.plugin, "ok": o.ok, "package": o.package, "upload": o.upload,
                                          "size": o.size, "errors": [str(p) for p in o.errors],
                                          "warnings": [str(p) for p in o.warnings]} for o in outcomes]
                                        + [{"plugin": r.plugin, "install": r.install, "start": r.start,
                                            "seconds": round(r.seconds, 1), "environment": r.environment,
                                            "operator_setting": r.operator_setting, "official": r.official}
                                           for r in installed], indent=1))
    return 0 if all(o.ok for o in outcomes) and all(r.ok for r in installed) and len(contract) <= 1 else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
