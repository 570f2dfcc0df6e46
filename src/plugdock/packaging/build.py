"""Build a ``.difypkg`` from a plugin folder: validated, ``.difyignore`` applied, deterministic bytes."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from plugdock.errors import PackageError, PackageLimitExceeded, ValidationFailed
from plugdock.packaging.archive import DEFAULT_MAX_SIZE
from plugdock.packaging.checksum import package_checksum
from plugdock.packaging.identifier import PluginIdentifier
from plugdock.packaging.ignore import ignore_filter
from plugdock.packaging.runtime_wheel import build_runtime_wheel
from plugdock.packaging.ship_runtime import rewrite_requirements, ship_runtime
from plugdock.packaging.uv import uv_binary
from plugdock.packaging.zipfiles import ProgressFn, write_zip
from plugdock.schema.imports_check import import_problems
from plugdock.schema.plugin import DirectorySource, LoadedPlugin, load_plugin


@dataclass
class BuiltPackage:
    data: bytes
    identifier: PluginIdentifier
    plugin: LoadedPlugin
    files: list[str]


def collect_files(root: Path) -> list[tuple[str, bytes]]:
    """Every file ``.difyignore`` keeps; a link to a file inside the plugin is packed as its target's bytes, as the
    official packager packs it, and any other link is refused (``DirectorySource`` says which and why)."""
    source = DirectorySource(root, exclude=ignore_filter(root))
    refused = [link for link in source.links if link.refused]
    if refused:
        raise PackageError("; ".join(f"{link.path}: {link.message()}" for link in refused))
    out = []
    for rel in source.files():
        data = source.read(rel)
        if data is None:
            raise PackageError(f"{rel}: cannot be read")
        out.append((rel, data))
    return out


def _uv_requirements(contents: dict[str, bytes]) -> bytes:
    """The official packager derives requirements.txt from uv.lock when a plugin only has pyproject + lock."""
    uv = uv_binary()
    if not uv:
        raise PackageError(
            "the plugin has pyproject.toml and uv.lock but no requirements.txt; install uv (pip install uv) so "
            "plugdock can export one, or add requirements.txt yourself"
        )
    # --no-dev, not --no-group dev: uv refuses the latter when the project defines no dev group
    cmd = [uv, "export", "--frozen", "--format", "requirements.txt", "--no-dev", "--no-emit-project",
           "--no-hashes", "--no-header", "--no-annotate"]
    with tempfile.TemporaryDirectory(prefix="plugdock-export-") as tmp:
        for name in ("pyproject.toml", "uv.lock"):
            Path(tmp, name).write_bytes(contents[name])
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, check=False)
    if proc.returncode != 0:
        raise PackageError(f"uv export failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def package_files(root: Path) -> list[tuple[str, bytes]]:
    """What the package of the folder holds, sorted: its files, the plugdock-sdk wheel when it names plugdock
    (dependency files pointed at it), and a requirements.txt exported from uv.lock when it has only that."""
    files = ship_runtime(collect_files(root))
    contents = dict(files)
    if "requirements.txt" not in contents and {"pyproject.toml", "uv.lock"} <= contents.keys():
        exported = _uv_requirements(contents)
        files.append(("requirements.txt", rewrite_requirements(exported, build_runtime_wheel())
                      if any(n.startswith("wheels/plugdock_sdk-") for n in contents) else exported))
    return sorted(files, key=lambda item: item[0])


def is_bundle(root: Path) -> bool:
    from plugdock.schema.yaml_source import load_yaml

    manifest = root / "manifest.yaml"
    data = load_yaml(manifest.read_bytes(), "manifest.yaml").data if manifest.exists() else None
    return isinstance(data, dict) and data.get("type") == "bundle"


def build_bundle(root: str | Path, *, max_size: int = DEFAULT_MAX_SIZE * 12) -> bytes:
    """A bundle (``type: bundle`` manifest plus the packages it carries) as a deterministic zip."""
    from plugdock.schema.bundle_loader import load_bundle

    root = Path(root)
    bundle, problems = load_bundle(DirectorySource(root, exclude=ignore_filter(root)))
    if bundle is None or any(p.is_error for p in problems):
        raise ValidationFailed(f"{root}: the bundle has errors", problems)
    files = collect_files(root)
    total = sum(len(c) for _, c in files)
    if total > max_size:
        raise PackageLimitExceeded(f"bundle is {total} bytes uncompressed, over the {max_size}-byte limit")
    return write_zip(sorted(files))


def validated_plugin(root: Path) -> LoadedPlugin:
    """The plugin at ``root`` as it will be packed, or ``ValidationFailed`` listing every error (the schemas and
    the check that its code imports only what its dependency files install)."""
    if not root.is_dir():
        raise PackageError(f"{root}: not a directory")
    source = DirectorySource(root, exclude=ignore_filter(root))
    plugin = load_plugin(source)
    plugin.problems.extend(import_problems(source))  # code importing what the requirements do not install
    if not plugin.ok or plugin.manifest is None:
        raise ValidationFailed(f"{root}: the plugin has {len(plugin.errors)} error(s)", plugin.problems)
    return plugin


def largest_files(files: list[tuple[str, bytes]], count: int = 5) -> str:
    """The ``count`` largest files, for a size-limit error."""
    return "; ".join(f"{n} ({len(c)} bytes)" for n, c in sorted(files, key=lambda item: -len(item[1]))[:count])


def build_package(
    root: str | Path, *, max_size: int = DEFAULT_MAX_SIZE, progress: ProgressFn | None = None
) -> BuiltPackage:
    """Validate the plugin at ``root`` and pack it; raises ``ValidationFailed`` listing every error."""
    root = Path(root)
    plugin = validated_plugin(root)
    files = package_files(root)
    total = sum(len(c) for _, c in files)
    if total > max_size:
        raise PackageLimitExceeded(
            f"plugin is {total} bytes uncompressed, over the {max_size}-byte limit; largest files: "
            f"{largest_files(files)}"
        )
    data = write_zip(files, progress=progress)
    manifest = plugin.manifest
    assert manifest is not None  # validated_plugin refuses a plugin without one
    identifier = PluginIdentifier(manifest.author, manifest.name, manifest.version, package_checksum(files))
    return BuiltPackage(data=data, identifier=identifier, plugin=plugin, files=[n for n, _ in files])
