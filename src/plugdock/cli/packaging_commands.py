"""Packaging commands: ``package``, ``checksum``, ``keygen``, ``sign`` and ``verify``."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from plugdock.errors import PlugdockError
from plugdock.packaging.archive import DEFAULT_MAX_SIZE, PackageArchive
from plugdock.packaging.build import build_bundle, build_package, is_bundle, package_files
from plugdock.packaging.checksum import package_checksum
from plugdock.packaging.runtime_wheel import WHEEL_FOLDER
from plugdock.packaging.signature import (
    CATEGORIES,
    load_private_key,
    load_public_key,
    official_public_key,
    sign_package,
    verify_package,
    write_keypair,
)

SIZE_RE = re.compile(r"^(\d+)\s*([kmg]?)i?b?$", re.IGNORECASE)
PROGRESS_THRESHOLD = 5 * 1024 * 1024


def parse_size(text: str) -> int:
    """``50M``, ``512k``, ``1G`` or a plain byte count."""
    match = SIZE_RE.match(text.strip())
    if not match:
        raise click.BadParameter(f"{text!r} is not a size such as 50M, 512K or 1048576")
    number, unit = int(match.group(1)), match.group(2).lower()
    return number * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the package.")
@click.option("--max-size", default="50M", show_default=True, help="Largest uncompressed size allowed.")
@click.option("--offline", is_flag=True, help="Carry every dependency as a wheel: installs with no package index.")
@click.option("--platform", "platforms", multiple=True, help="With --offline: wheel platform tag (repeatable; "
              "default the host's manylinux2014 machine), e.g. manylinux2014_x86_64.")
@click.option("--python", "python", help="With --offline: Python version of the wheels (default meta.runner.version).")
def package(directory: Path, output: Path | None, max_size: str, offline: bool, platforms: tuple[str, ...],
            python: str | None) -> None:
    """Validate DIRECTORY and pack it into a deterministic .difypkg (or .difybndl for a bundle)."""
    limit = parse_size(max_size)
    if offline or platforms or python:
        from plugdock.cli.offline_output import package_offline

        package_offline(directory, output, limit, offline, list(platforms), python)
        return
    if is_bundle(directory):
        target = output or Path(f"{directory.resolve().name}.difybndl")
        target.write_bytes(build_bundle(directory, max_size=limit * 12))
        click.secho(f"packaged bundle {target}", fg="green", err=True)
        return
    total = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file() and ".git" not in f.parts)
    if total > PROGRESS_THRESHOLD and os.isatty(2):
        with Progress(TextColumn("packing"), BarColumn(), DownloadColumn(), transient=True) as bar:
            task = bar.add_task("pack", total=total)
            built = build_package(directory, max_size=limit,
                                  progress=lambda done, all_: bar.update(task, completed=done, total=all_))
    else:
        built = build_package(directory, max_size=limit)
    manifest = built.plugin.manifest
    assert manifest is not None
    target = output or Path(f"{manifest.name}-{manifest.version}.difypkg")
    target.write_bytes(built.data)
    for warning in built.plugin.problems:
        click.secho(str(warning), fg="yellow", err=True)
    shipped = next((name for name in built.files if name.startswith(f"{WHEEL_FOLDER}/plugdock_sdk-")), None)
    if shipped is not None:
        size = len(PackageArchive.open(built.data).read(shipped) or b"")
        click.echo(f"carries {shipped} ({size // 1024} KiB): installs with no index serving plugdock; "
                   "`plugdock port --to dify` targets the official SDK instead", err=True)
    click.secho(f"packaged {target} ({len(built.data)} bytes, {len(built.files)} files)", fg="green", err=True)
    click.echo(str(built.identifier))


@click.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
def checksum(target: Path) -> None:
    """Print the checksum of a .difypkg, or of the package a plugin folder makes, as the official daemon computes it."""
    if target.is_dir():
        if not (target / "manifest.yaml").is_file():  # else the checksum of whatever files lie there
            raise PlugdockError(f"{target} holds no manifest.yaml: name the plugin folder (the one with "
                                "manifest.yaml) or a .difypkg")
        click.echo(package_checksum(package_files(target)))
    else:
        click.echo(package_checksum(PackageArchive.open(target).read_all()))


@click.command()
@click.option("--name", required=True, help="Writes NAME.private.pem and NAME.public.pem.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Directory to write the keys in.")
@click.option("--bits", type=click.IntRange(2048, 8192), default=4096, show_default=True)
def keygen(name: str, directory: Path, bits: int) -> None:
    """Create an RSA key pair for signing packages."""
    private, public = write_keypair(name, directory, bits)
    click.echo(f"private key: {private} (keep it secret)")
    click.echo(f"public key:  {public} (give it to daemons that should trust your packages)")
    click.echo(f"a daemon trusts it with THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED=true and "
               f"THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS={public}")


@click.command()
@click.argument("pkg", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PRIVATE.pem from plugdock keygen.")
@click.option("--category", type=click.Choice(CATEGORIES), default="community", show_default=True,
              help="Authorized category recorded in .verification.dify.json.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Default: <pkg>.signed.difypkg beside the input.")
def sign(pkg: Path, key_path: Path, category: str, output: Path | None) -> None:
    """Sign a .difypkg in the official signature scheme."""
    key = load_private_key(key_path)
    signed = sign_package(pkg.read_bytes(), key, category=category)  # type: ignore[arg-type]
    target = output or pkg.with_name(f"{pkg.stem}.signed{pkg.suffix or '.difypkg'}")
    target.write_bytes(signed)
    click.echo(f"signed package: {target}")


@click.command()
@click.argument("pkg", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pubkey", "pubkeys", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PUBLIC.pem to trust besides Dify's official key (repeatable).")
def verify(pkg: Path, pubkeys: tuple[Path, ...]) -> None:
    """Verify a package signature with Dify's official key and any --pubkey; exit 0 only when it is valid."""
    archive = PackageArchive.open(pkg, max_size=DEFAULT_MAX_SIZE * 12)
    names = ["Dify's official key", *(str(p) for p in pubkeys)]
    info = verify_package(archive, [official_public_key(), *(load_public_key(p) for p in pubkeys)])
    signed_at = dt.datetime.fromtimestamp(info.time, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    # no verification entry: the daemon counts Dify's own packages (which predate it) as langgenius
    category = info.category or ("langgenius" if info.key_index == 0 else "none")
    click.secho(f"{pkg}: signature valid (key {names[info.key_index]}, category {category}, "
                f"signed at {signed_at})", fg="green")


COMMANDS = [package, checksum, keygen, sign, verify]
