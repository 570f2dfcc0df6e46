"""``plugdock package --offline``: build the package with its wheels and say what went in and how big it is."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import click

from plugdock.errors import PackageError
from plugdock.packaging.offline import build_offline_package


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


def package_offline(directory: Path, output: Path | None, limit: int, offline: bool, platforms: list[str],
                    python: str | None) -> None:
    if not offline:
        raise PackageError("--platform and --python choose the wheels of an offline package: add --offline")
    from plugdock.packaging.build import is_bundle

    if is_bundle(directory):
        raise PackageError(f"{directory}: a bundle carries packages, not dependencies; package each member plugin "
                           "with --offline and put those packages in the bundle")
    built, report = build_offline_package(directory, platforms, python, max_size=limit,
                                          say=lambda line: click.echo(line, err=True))
    manifest = built.plugin.manifest
    assert manifest is not None
    target = output or Path(f"{manifest.name}-{manifest.version}.difypkg")
    target.write_bytes(built.data)
    for warning in built.plugin.problems:
        click.secho(str(warning), fg="yellow", err=True)
    wheels = sum(report.wheels.values())
    click.echo(f"offline: {len(report.wheels)} wheel(s), {_mib(wheels)}, for {', '.join(report.platforms)} and "
               f"Python {report.python}; requirements.txt installs them with no package index", err=True)
    if report.dropped:
        click.echo(f"left out {', '.join(report.dropped)}: the daemons would prefer them and resolve from an index; "
                   "requirements.txt installs the same dependencies", err=True)
    click.secho(f"packaged {target} ({_mib(len(built.data))} compressed, {len(built.files)} files; uncompressed "
                f"{_mib(_uncompressed(built.data))} of the {_mib(limit)} limit)", fg="green", err=True)
    click.echo(str(built.identifier))


def _uncompressed(data: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return sum(info.file_size for info in zf.infolist())
