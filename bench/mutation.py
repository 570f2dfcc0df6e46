"""Mutation testing of the safety modules, each against its own test files (mutmut 3).

Not part of the test run (minutes per module on two cores). Each module is mutated in a throwaway copy
of the tree (``--work``, default a temporary folder), so the working tree is never changed and other
runs keep importing the real code. The score is killed / all mutants; survivors are printed as diffs.

    python -m venv --system-site-packages /tmp/mut && /tmp/mut/bin/pip install 'mutmut==3.8.1'
    /tmp/mut/bin/python bench/mutation.py                       # every module
    /tmp/mut/bin/python bench/mutation.py archive signature     # the modules whose path contains a word

(A venv with ``--system-site-packages`` keeps mutmut's newer click away from the project's environment.)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "plugdock"

# module (relative to src/plugdock) -> its own test files; a module that moved is found again by its name
TARGETS: dict[str, list[str]] = {
    "packaging/archive.py": ["tests/test_archive_safety.py", "tests/test_limits_archive.py"],
    "packaging/signature.py": ["tests/test_signature.py", "tests/test_limits_signature.py"],
    "packaging/checksum.py": ["tests/test_packaging.py", "tests/test_limits_archive.py"],
    "packaging/identifier.py": ["tests/test_packaging.py", "tests/test_limits_archive.py"],
    "packaging/ignore.py": ["tests/test_packaging.py", "tests/test_limits_archive.py", "tests/test_limits_build.py"],
    "packaging/build.py": ["tests/test_packaging.py", "tests/test_cli.py", "tests/test_limits_build.py"],
    "daemon/state/kvstore.py": ["tests/test_daemon_kvstore.py"],
    "daemon/http/guards.py": ["tests/test_limits_guards.py"],
    "schema/validation.py": ["tests/test_limits_validation.py", "tests/test_yaml_fixtures.py"],
}
KILLED = {1, 3, 37}  # a failing test, pytest's internal error, the type check
TIMEOUT = {36, 24, -24, 152, 255}


@dataclass
class Score:
    module: str
    statuses: dict[str, int | None] = field(default_factory=dict)

    @property
    def killed(self) -> int:
        return sum(1 for code in self.statuses.values() if code in KILLED or code in TIMEOUT)

    @property
    def survivors(self) -> list[str]:
        return sorted(name for name, code in self.statuses.items() if code not in KILLED and code not in TIMEOUT)

    @property
    def percent(self) -> float:
        return 100.0 * self.killed / len(self.statuses) if self.statuses else 0.0


def locate(module: str) -> Path:
    """The module's current path: as listed, or the one file of that name under src/plugdock."""
    listed = PACKAGE / module
    if listed.exists():
        return listed
    found = sorted(PACKAGE.rglob(Path(module).name))
    if len(found) != 1:
        raise SystemExit(f"{module}: found {len(found)} files of that name under {PACKAGE}")
    return found[0]


def prepare(work: Path, module: Path, tests: list[str]) -> None:
    """A copy of what the tests need, and mutmut's configuration for this one module."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".mypy_cache", ".ruff_cache", "*.pyc")
    for part in ("src", "tests", "bench", "examples"):
        shutil.copytree(ROOT / part, work / part, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", work / "pyproject.toml")
    present = [t for t in tests if (ROOT / t).exists()]
    lines = "\n    ".join
    (work / "setup.cfg").write_text(
        "[mutmut]\n"
        "source_paths = src\n"
        f"only_mutate = {module.relative_to(ROOT).as_posix()}\n"
        f"also_copy =\n    bench\n    examples\n"
        f"pytest_add_cli_args_test_selection =\n    {lines(present)}\n"
        "pytest_add_cli_args =\n    -pno:cacheprovider\n    -pno:xdist\n    -pno:benchmark\n"
        "use_git_change_detection = false\n"
    )


def run(module_key: str, base: Path, children: int) -> Score:
    module = locate(module_key)
    work = base / module_key.replace("/", "_").removesuffix(".py")
    prepare(work, module, TARGETS[module_key])
    env = dict(os.environ, PYTEST_DEBUG_TEMPROOT=str(work / "tmp"))  # never the shared /tmp/pytest-of-<user>
    (work / "tmp").mkdir()
    log = work / "mutmut.log"
    with log.open("w") as out:
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(children)],
                       cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    meta = work / "mutants" / (module.relative_to(ROOT).as_posix() + ".meta")
    if not meta.exists():
        raise SystemExit(f"{module_key}: mutmut wrote no results; see {log}")
    score = Score(module_key, json.loads(meta.read_text())["exit_code_by_key"])
    with (work / "survivors.diff").open("w") as out:
        for name in score.survivors:
            shown = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=work, env=env,
                                   capture_output=True, text=True, check=False)
            out.write(shown.stdout + "\n")
    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("words", nargs="*", help="run only the modules whose path contains one of these")
    parser.add_argument("--work", type=Path, help="where the copies go (default: a new temporary folder)")
    parser.add_argument("--children", type=int, default=2, help="mutants tested at once (default 2)")
    args = parser.parse_args()
    if importlib.util.find_spec("mutmut") is None:
        raise SystemExit("mutmut is not installed here; see the command at the top of bench/mutation.py")
    chosen = [m for m in TARGETS if not args.words or any(w in m for w in args.words)]
    base = args.work or Path(tempfile.mkdtemp(prefix="plugdock-mutation-"))
    print(f"{'module':<26} {'killed':>7} {'total':>6} {'score':>7}   survivors "
          f"(diffs in {base}/<module>/survivors.diff)")
    for module_key in chosen:
        score = run(module_key, base, args.children)
        print(f"{module_key:<26} {score.killed:>7} {len(score.statuses):>6} {score.percent:>6.1f}%   "
              f"{', '.join(n.rsplit('.', 1)[-1] for n in score.survivors) or '-'}", flush=True)


if __name__ == "__main__":
    main()
