"""``plugdock registry serve|yank`` and ``plugdock publish registry``: a self-hosted marketplace and its clients.

The upload token lives on the server in ``PLUGDOCK_REGISTRY_TOKEN`` (never on its command line); a client reads it
from ``--token-file``, ``PLUGDOCK_REGISTRY_TOKEN`` or ``--token``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from plugdock.cli.secrets_input import resolve_secret
from plugdock.errors import PlugdockError

TOKEN_ENV = "PLUGDOCK_REGISTRY_TOKEN"


def _home() -> Path:
    return Path(os.environ.get("PLUGDOCK_REGISTRY_HOME") or Path.home() / ".plugdock-registry")


def _client_token(token_file: Path | None, token: str | None) -> str:
    return resolve_secret(file_path=token_file, value=token, env_names=(TOKEN_ENV,), what="registry token",
                          file_option="--token-file", value_option="--token",
                          hint=" (the PLUGDOCK_REGISTRY_TOKEN the registry was started with)").value


def token_options(func: Any) -> Any:
    func = click.option("--token", help=f"The upload token (else --token-file or {TOKEN_ENV}).")(func)
    return click.option("--token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        help="A file holding the upload token.")(func)


def _answer(response: Any, what: str) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or body.get("code") != 0:
        raise PlugdockError(f"{what}: the registry answered {response.status_code}: "
                            f"{body.get('msg') or response.text[:300]}")
    return body["data"]


@click.group()
def registry() -> None:
    """A self-hosted Dify Marketplace: serve packages to Dify (MARKETPLACE_API_URL) and manage their versions."""


@registry.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=5010, show_default=True)
@click.option("--home", type=click.Path(file_okay=False, path_type=Path),
              help="Where the database and packages live (PLUGDOCK_REGISTRY_HOME, else ~/.plugdock-registry).")
@click.option("--db", envvar="PLUGDOCK_REGISTRY_DB", help="Database URL: sqlite:///FILE (default HOME/registry.db) "
              "or postgresql://USER@HOST:PORT/DB.")
@click.option("--storage", envvar="PLUGDOCK_REGISTRY_STORAGE", default="",
              help="Package storage: a folder (default HOME/packages) or s3://BUCKET/PREFIX?endpoint=URL&region=R.")
@click.option("--key", "key_path", envvar="PLUGDOCK_REGISTRY_SIGNING_KEY",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PRIVATE.pem (plugdock keygen): sign every package the registry takes in.")
@click.option("--max-size", default="50M", show_default=True, help="Largest package accepted.")
def serve(host: str, port: int, home: Path | None, db: str | None, storage: str, key_path: Path | None,
          max_size: str) -> None:
    """Serve the Marketplace API and a page listing the plugins; uploads need PLUGDOCK_REGISTRY_TOKEN set here."""
    import uvicorn
    from cryptography.hazmat.primitives import serialization

    from plugdock.cli.packaging_commands import parse_size
    from plugdock.packaging.signature import load_private_key
    from plugdock.registry.app import RegistryConfig, create_app
    from plugdock.registry.blobs import open_blobs
    from plugdock.registry.store import Catalog

    home = home or _home()
    home.mkdir(parents=True, exist_ok=True)
    key = load_private_key(key_path) if key_path else None
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.PKCS1) if key else b""  # as keygen writes it
    config = RegistryConfig(catalog=Catalog(db or f"sqlite:///{home / 'registry.db'}"),
                            blobs=open_blobs(storage, home), token=os.environ.get(TOKEN_ENV, ""), key=key,
                            public_key_pem=public, max_size=parse_size(max_size))
    click.echo(f"plugdock registry on http://{host}:{port} (packages in {config.blobs.describe()}; uploads "
               f"{'need the token' if config.token else f'off: {TOKEN_ENV} is not set'}; "
               f"{'signing with ' + str(key_path) if key else 'not signing'})", err=True)
    click.echo(f"point Dify at it: MARKETPLACE_API_URL=http://{host}:{port}", err=True)
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")


@registry.command()
@click.argument("url")
@click.argument("identifier")
@click.option("--reason", default="", help="Why, shown beside the version.")
@click.option("--undo", is_flag=True, help="Offer the version again.")
@token_options
def yank(url: str, identifier: str, reason: str, undo: bool, token_file: Path | None, token: str | None) -> None:
    """Hide IDENTIFIER (org/name:version@checksum) from "latest" and listings; exact references keep working."""
    import httpx

    secret = _client_token(token_file, token)
    response = httpx.post(f"{url.rstrip('/')}/api/v1/plugins/yank", timeout=60,
                          headers={"Authorization": f"Bearer {secret}"},
                          json={"unique_identifier": identifier, "reason": reason, "yanked": not undo})
    entry = _answer(response, f"yank {identifier}")
    click.echo(f"{identifier}: {'yanked' if entry['yanked'] else 'offered again'}")


@click.command("registry")
@click.argument("url")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@token_options
def publish_registry(url: str, source: Path, token_file: Path | None, token: str | None) -> None:
    """Upload SOURCE (a plugin folder, built here, or a .difypkg) to the plugdock registry at URL."""
    import httpx

    from plugdock.packaging.build import build_package

    secret = _client_token(token_file, token)
    data = build_package(source).data if source.is_dir() else source.read_bytes()
    try:
        response = httpx.post(f"{url.rstrip('/')}/api/v1/plugins/upload", timeout=300,
                              headers={"Authorization": f"Bearer {secret}"},
                              files={"package": (source.name, data, "application/octet-stream")})
    except httpx.HTTPError as exc:
        raise PlugdockError(f"{url}: cannot reach the registry: {exc}") from exc
    entry = _answer(response, f"upload of {source}")
    state = "published" if entry["created"] else "already published"
    click.echo(f"{state} {entry['plugin_id']} {entry['version']} ({entry['size']} bytes"
               f"{', signed by the registry' if entry['signed'] else ''})", err=True)
    click.echo(f"download: {entry['download_url']}", err=True)
    click.echo(entry["unique_identifier"])


COMMANDS = [registry]
