"""Offline packages: every dependency travels inside the package as a wheel, installed with no index at all.

Air-gapped daemons cannot reach PyPI, so ``plugdock package --offline`` resolves the plugin's requirements for
the target platforms and Python (``uv pip compile --only-binary :all:``), downloads exactly those wheels
(``pip download --no-deps --only-binary :all: --platform … --python-version …``) into ``wheels/`` — the folder the
community repackaging tool and the shipped plugdock-sdk wheel use too — and rewrites ``requirements.txt`` so each
line names one of them, relative to the plugin folder and pinned by hash: ``name @ ./wheels/x.whl
--hash=sha256:…``. That spelling is what both the official daemon (``uv pip install -r requirements.txt`` run in
the plugin folder, where a line with a path never consults the index) and plugdock's requirements policy accept;
``--no-index --find-links`` lines would work in the official daemon only. A wheel only some of the platforms need
gets environment markers naming them, so one package serves, say, x86_64 and aarch64 hosts.
"""

from __future__ import annotations

import hashlib
import platform as host_platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from plugdock.errors import PackageError, PackageLimitExceeded
from plugdock.packaging.archive import DEFAULT_MAX_SIZE
from plugdock.packaging.build import BuiltPackage, largest_files, package_files, validated_plugin
from plugdock.packaging.checksum import package_checksum
from plugdock.packaging.identifier import PluginIdentifier
from plugdock.packaging.runtime_wheel import WHEEL_FOLDER
from plugdock.packaging.uv import uv_binary, uv_environment
from plugdock.packaging.zipfiles import write_zip

DEFAULT_PYTHON = "3.12"  # what the official daemon's images run when the manifest names no version
PROJECT_FILES = ("pyproject.toml", "uv.lock")  # left out: the daemons would prefer them and reach for an index
_PLATFORM = re.compile(r"^(?P<family>manylinux2014|manylinux_\d+_\d+|musllinux_\d+_\d+|linux|macosx_\d+_\d+|win)"
                       r"_(?P<arch>x86_64|aarch64|arm64|universal2|amd64|arm64|i686|ppc64le|s390x)$")
_MACHINES = {"amd64": "AMD64", "arm64": "arm64"}
Say = Callable[[str], None]
STEP_TIMEOUT = 900  # seconds for one resolve or download: a stalled index must not hang the packager


@dataclass(frozen=True)
class Target:
    """One ``--platform`` tag (pip's spelling), with uv's name for it and the markers that select it."""

    tag: str
    uv_platform: str
    marker: str

    @classmethod
    def parse(cls, tag: str) -> Target:
        match = _PLATFORM.match(tag.strip())
        if not match:
            raise PackageError(f"--platform {tag!r}: not a wheel platform tag plugdock knows; use one such as "
                               "manylinux2014_x86_64, manylinux_2_28_aarch64, musllinux_1_2_x86_64, "
                               "macosx_11_0_arm64 or win_amd64")
        family, arch = match["family"], match["arch"]
        machine = {"aarch64": "aarch64", "arm64": "arm64"}.get(arch, arch)
        if family.startswith("macosx"):
            uv_arch = {"arm64": "aarch64"}.get(arch, arch)
            uv = "macos" if arch == "universal2" else f"{uv_arch}-apple-darwin"
            marker = "sys_platform == 'darwin'" + ("" if arch == "universal2" else
                                                   f" and platform_machine == '{machine}'")
            return cls(tag, uv, marker)
        if family == "win":
            return cls(tag, "x86_64-pc-windows-msvc" if arch == "amd64" else "windows",
                       f"sys_platform == 'win32' and platform_machine == '{_MACHINES.get(arch, arch)}'")
        if family.startswith("musllinux"):
            uv = f"{arch}-unknown-linux-musl"
        elif family == "linux":
            uv = f"{arch}-unknown-linux-gnu"
        else:
            uv = f"{arch}-{family}"
        return cls(tag, uv, f"sys_platform == 'linux' and platform_machine == '{machine}'")


def default_platform() -> str:
    """The host's own machine on Linux (a daemon beside the packager), else the common x86_64 server."""
    machine = host_platform.machine().lower()
    return f"manylinux2014_{machine}" if sys.platform == "linux" and machine in ("x86_64", "aarch64") \
        else "manylinux2014_x86_64"


@dataclass
class OfflineReport:
    """What vendoring put into the package, for the command to print."""

    platforms: list[str]
    python: str
    wheels: dict[str, int] = field(default_factory=dict)  # package path -> bytes
    dropped: list[str] = field(default_factory=list)


def _run(cmd: list[str], cwd: Path, what: str) -> str:
    env = uv_environment(PIP_DISABLE_PIP_VERSION_CHECK="1")
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise PackageError(f"{what}: no answer in {STEP_TIMEOUT} s (is the package index reachable?)") from None
    if proc.returncode != 0:
        tail = "\n".join(line for line in proc.stderr.strip().splitlines() if not line.startswith("WARNING:"))
        raise PackageError(f"{what}: {tail[-1500:] or proc.stdout.strip()[-800:]}")
    return proc.stdout


def _compile(work: Path, source: str, target: Target, python: str) -> list[str]:
    """``name==version`` pins for ``target`` (local wheels the package already carries left out)."""
    uv = uv_binary()
    if not uv:
        raise PackageError("--offline resolves the requirements with uv: install uv (pip install uv)")
    what = f"{source} does not resolve with wheels only for {target.tag}, Python {python} (uv pip compile)"
    try:
        out = _run([uv, "pip", "compile", "-q", "--no-header", "--no-annotate", "--only-binary", ":all:",
                    "--python-version", python, "--python-platform", target.uv_platform, source], work, what)
    except PackageError as exc:
        missing = _NO_WHEEL.search(exc.message)
        if missing:
            raise PackageError(f"{source}: {missing.group(1)} has no wheel for {target.tag} and Python {python}, "
                               "and an offline package cannot build one on the daemon: pick another version or "
                               f"--platform, or leave it out. {exc.message}") from None
        raise
    pins = []
    for line in out.splitlines():
        text = line.split("#", 1)[0].strip()
        if not text or text.endswith(".whl") or " @ " in text:  # a wheel inside the package: shipped already
            continue
        if not _PIN.match(text):
            raise PackageError(f"{source}: uv resolved {text!r} for {target.tag}, which is neither a pinned "
                               "release nor a wheel inside the package; an offline package carries only wheels")
        pins.append(text)
    return pins


_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?==[^\s;]+$")


_NO_WHEEL = re.compile(r"(?:Because |And because )?(\S+) has no (?:usable )?wheels")
_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")


def _download(work: Path, pins: list[str], target: Target, python: str) -> list[Path]:
    folder = work / "download" / target.tag
    folder.mkdir(parents=True)
    if not pins:
        return []
    (folder.parent / f"{target.tag}.txt").write_text("\n".join(pins) + "\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", "--platform",
           target.tag, "--python-version", python, "--implementation", "cp", "--abi", f"cp{python.replace('.', '')}",
           "-d", str(folder), "-r", str(folder.parent / f"{target.tag}.txt")]
    try:
        _run(cmd, work, f"downloading the wheels for {target.tag}, Python {python} (pip download)")
    except PackageError as exc:
        missing = _NO_MATCH.search(exc.message)
        if missing:
            raise PackageError(f"{missing.group(1)} has no wheel for {target.tag} and Python {python}, and an "
                               "offline package cannot build one on the daemon: pick another version, another "
                               "--platform, or leave the dependency out") from None
        raise
    return sorted(folder.glob("*.whl"))


def _marker(users: set[str], targets: list[Target]) -> str:
    if users == {t.tag for t in targets}:
        return ""
    markers = sorted({t.marker for t in targets if t.tag in users})
    return markers[0] if len(markers) == 1 else " or ".join(f"({m})" for m in markers)


def vendor(files: list[tuple[str, bytes]], platforms: list[str], python: str,
           say: Say = lambda _: None) -> tuple[list[tuple[str, bytes]], OfflineReport]:
    """``files`` (a package's, as ``package_files`` gives them) with every dependency as a wheel in ``wheels/`` and
    ``requirements.txt`` installing only those."""
    targets = [Target.parse(tag) for tag in dict.fromkeys(platforms or [default_platform()])]
    if not re.fullmatch(r"3\.\d{1,2}", python):
        raise PackageError(f"--python {python!r}: give a Python version such as 3.12")
    contents = dict(files)
    report = OfflineReport([t.tag for t in targets], python)
    source = "requirements.txt" if "requirements.txt" in contents else \
        "pyproject.toml" if "pyproject.toml" in contents else None
    if source is None:
        return files, report
    kept = _kept_lines(contents.get("requirements.txt", b""))
    chosen: dict[str, tuple[bytes, set[str]]] = {}
    with tempfile.TemporaryDirectory(prefix="plugdock-offline-") as tmp:
        work = Path(tmp)
        for name, content in contents.items():
            if name == source or name.startswith(f"{WHEEL_FOLDER}/"):
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                (work / name).write_bytes(content)
        for target in targets:
            say(f"resolving {source} for {target.tag}, Python {python}")
            pins = _compile(work, source, target, python)
            say(f"downloading {len(pins)} wheel(s) for {target.tag}")
            for wheel in _download(work, pins, target, python):
                data, users = chosen.setdefault(wheel.name, (wheel.read_bytes(), set()))
                users.add(target.tag)
    lines, names = list(kept), dict[str, tuple[str, str]]()
    for filename in sorted(chosen):
        data, users = chosen[filename]
        try:
            dist: str = canonicalize_name(parse_wheel_filename(filename)[0])
        except InvalidWheelFilename as exc:
            raise PackageError(f"pip downloaded {filename}, which is not a valid wheel name ({exc})") from None
        marker = _marker(users, targets)
        if (dist, marker) in names.values():
            raise PackageError(f"{dist}: {filename} and {_named(names, dist, marker)} would both install on "
                               f"{marker or 'every platform'}; the platforms {', '.join(report.platforms)} cannot be "
                               "told apart by markers: package them separately")
        names[filename] = (dist, marker)
        path = f"{WHEEL_FOLDER}/{filename}"
        if path in contents and contents[path] != data:
            raise PackageError(f"{path}: the plugin folder has a different file of that name; remove it")
        contents[path] = data
        report.wheels[path] = len(data)
        where = f" ; {marker}" if marker else ""
        lines.append(f"{dist} @ ./{path}{where} --hash=sha256:{hashlib.sha256(data).hexdigest()}")
    header = (f"# Offline: every dependency is a wheel in ./{WHEEL_FOLDER}, installed with no package index\n"
              f"# (plugdock package --offline, {', '.join(report.platforms)}, Python {python}).\n")
    contents["requirements.txt"] = (header + "".join(f"{line}\n" for line in lines)).encode()
    for name in PROJECT_FILES:
        if contents.pop(name, None) is not None:
            report.dropped.append(name)
    return sorted(contents.items()), report


def _named(names: dict[str, tuple[str, str]], dist: str, marker: str) -> str:
    return next(f for f, value in names.items() if value == (dist, marker))


def _kept_lines(requirements: bytes) -> list[str]:
    """The lines naming wheels the package already carries (the plugdock-sdk wheel among them), as written."""
    kept = []
    for raw in requirements.decode("utf-8", "replace").splitlines():
        text = raw.split("#", 1)[0].strip()
        if text and re.search(rf"(^|[\s@:])(\./)?{WHEEL_FOLDER}/[^\s;]+\.whl", text):
            kept.append(text)
    return kept


def build_offline_package(root: str | Path, platforms: list[str], python: str | None = None, *,
                          max_size: int = DEFAULT_MAX_SIZE, say: Say = lambda _: None
                          ) -> tuple[BuiltPackage, OfflineReport]:
    """Validate the plugin at ``root``, vendor its dependencies, and pack it (``build_package``'s checks apply)."""
    root = Path(root)
    plugin = validated_plugin(root)
    manifest = plugin.manifest
    assert manifest is not None
    python = python or (manifest.meta.runner.version or DEFAULT_PYTHON)
    files, report = vendor(package_files(root), platforms, python, say)
    total = sum(len(c) for _, c in files)
    if total > max_size:
        listing = largest_files(files)
        raise PackageLimitExceeded(
            f"the offline package is {total} bytes uncompressed, over the {max_size}-byte limit (the daemon's "
            f"MAX_PLUGIN_PACKAGE_SIZE, Dify's PLUGIN_MAX_PACKAGE_SIZE; --max-size raises plugdock's); "
            f"largest files: {listing}")
    identifier = PluginIdentifier(manifest.author, manifest.name, manifest.version, package_checksum(files))
    return BuiltPackage(data=write_zip(files), identifier=identifier, plugin=plugin,
                        files=[n for n, _ in files]), report
