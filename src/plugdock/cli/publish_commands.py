"""``plugdock publish``: check a plugin as the Marketplace does, release it on GitHub, open the Marketplace PR.

GitHub calls take the token from ``--token-file``, ``GITHUB_TOKEN`` or ``GH_TOKEN`` (``--token`` works, with a
warning: a command line is readable by every local process) and the API from ``GITHUB_API_URL``."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click

from plugdock.cli.registry_commands import publish_registry
from plugdock.cli.secrets_input import resolve_secret
from plugdock.errors import PlugdockError

TOKEN_ENV = ("GITHUB_TOKEN", "GH_TOKEN")
DEFAULT_MARKETPLACE = "https://marketplace.dify.ai"
SOURCE = click.Path(exists=True, path_type=Path)


def _api_url() -> str:
    from plugdock.publishing.github import DEFAULT_API_URL

    return os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL


def _token(token_file: Path | None, token: str | None) -> str:
    return resolve_secret(file_path=token_file, value=token, env_names=TOKEN_ENV, what="GitHub token",
                          file_option="--token-file", value_option="--token",
                          hint=" (a token that may write releases or open pull requests)").value


def token_options(func: Any) -> Any:
    func = click.option("--token", help="Deprecated: the token itself, readable in /proc/<pid>/cmdline; use "
                        "--token-file or GITHUB_TOKEN.")(func)
    return click.option("--token-file", type=click.Path(readable=False, path_type=Path),
                        help="A file holding the GitHub token (else GITHUB_TOKEN or GH_TOKEN).")(func)


@click.group()
def publish() -> None:
    """Get a plugin from a folder to where Dify users install it."""


def _print_results(results: list[Any], as_json: bool, package: str, err: bool = False) -> None:
    from plugdock.publishing.run import passed

    if as_json:
        click.echo(json.dumps({"package": package, "passed": passed(results),
                               "checks": [r.as_json() for r in results]}, indent=2))
        return
    colours = {"pass": "green", "fail": "red", "skipped": "yellow"}
    for r in results:
        where = f"  [{r.where}]" if r.where else ""
        click.echo(click.style(f"{r.status.upper():7}", fg=colours[r.status]) + f" {r.name:21} {r.message}{where}",
                   err=err)
        for warning in r.warnings:
            click.secho(f"{'':8}{'':21} warning: {warning}", fg="yellow", err=err)
    failed = [r.name for r in results if not r.ok]
    summary = f"{package}: {len(failed)} of {len(results)} checks failed ({', '.join(failed)})" if failed else \
        f"{package}: every Marketplace check passed"
    click.secho(summary, fg="red" if failed else "green", err=True)


def _run_checks(source: Path, marketplace_url: str | None, repo: str | None, resolve: bool, install: bool,
                token: str | None = None) -> tuple[Any, list[Any]]:
    from plugdock.publishing.github import GitHub, parse_repo
    from plugdock.publishing.release import released
    from plugdock.publishing.run import run_checks
    from plugdock.publishing.source import load_candidate

    candidate = load_candidate(source)
    if repo is None:
        return candidate, run_checks(candidate, marketplace_url=marketplace_url, resolve=resolve, install=install)
    with GitHub(token or next((os.environ[n] for n in TOKEN_ENV if os.environ.get(n)), None), _api_url()) as gh:
        return candidate, run_checks(candidate, marketplace_url=marketplace_url,
                                     released=released(gh, parse_repo(repo)), resolve=resolve, install=install)


@publish.command()
@click.argument("source", type=SOURCE)
@click.option("--json", "as_json", is_flag=True, help="One JSON document: every check with status, file and line.")
@click.option("--marketplace-url", help=f"Ask this Marketplace whether the version exists ({DEFAULT_MARKETPLACE}).")
@click.option("--repo", help="Ask this GitHub repository (OWNER/NAME) whether its release carries the version.")
@click.option("--no-resolve", is_flag=True, help="Skip resolving requirements.txt with uv (it needs an index).")
@click.option("--no-install", is_flag=True, help="Skip installing the package in a throwaway daemon.")
def check(source: Path, as_json: bool, marketplace_url: str | None, repo: str | None, no_resolve: bool,
          no_install: bool) -> None:
    """Run the Marketplace's automated checks on SOURCE (a plugin folder or a .difypkg); exit 1 if any fails."""
    from plugdock.publishing.run import passed

    candidate, results = _run_checks(source, marketplace_url, repo, not no_resolve, not no_install)
    _print_results(results, as_json, candidate.asset_name)
    if not passed(results):
        raise SystemExit(1)


def _package_bytes(candidate: Any, key: Path | None) -> bytes:
    if key is None:
        return bytes(candidate.data)
    from plugdock.packaging.signature import load_private_key, sign_package

    return sign_package(candidate.data, load_private_key(key))


def _upload_progress() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    return Progress(TextColumn("uploading"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    console=Console(stderr=True), transient=True)


@publish.command()
@click.argument("source", type=SOURCE)
@click.option("--repo", required=True, help="The GitHub repository (OWNER/NAME) whose release gets the package.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PRIVATE.pem from plugdock keygen: sign the package before uploading it.")
@click.option("--replace", is_flag=True, help="Replace an asset of the same name on the release.")
@token_options
def github(source: Path, repo: str, key: Path | None, replace: bool, token_file: Path | None,
           token: str | None) -> None:
    """Build SOURCE (signed with --key), and upload <name>-<version>.difypkg to the release v<version> of --repo."""
    from plugdock.publishing.github import GitHub, parse_repo
    from plugdock.publishing.release import publish_release
    from plugdock.publishing.source import load_candidate

    repo = parse_repo(repo)
    secret = _token(token_file, token)
    candidate = load_candidate(source)
    candidate.data = _package_bytes(candidate, key)
    with GitHub(secret, _api_url()) as gh, _upload_progress() as bar:
        task = bar.add_task("upload", total=len(candidate.data))
        done = publish_release(gh, repo, candidate, replace=replace,
                               progress=lambda sent, total: bar.update(task, completed=sent, total=total))
    verb = "replaced" if done.replaced else "uploaded"
    click.echo(f"{verb} {candidate.asset_name} ({len(candidate.data)} bytes"
               f"{', signed' if key else ''}) on {'a new' if done.created_release else 'the'} release "
               f"v{candidate.version} of {repo}", err=True)
    click.echo(f"install with: plugdock install github:{repo}@{candidate.version}", err=True)
    click.echo(done.release_url)


@publish.command()
@click.argument("source", type=SOURCE)
@click.option("--fork", help="Use this fork (OWNER/NAME) of langgenius/dify-plugins instead of forking.")
@click.option("--dry-run", is_flag=True, help="Run the checks, print the steps and the pull request; change nothing.")
@click.option("--marketplace-url", default=DEFAULT_MARKETPLACE, show_default=True,
              help="The Marketplace asked whether the version exists.")
@click.option("--no-resolve", is_flag=True, help="Skip resolving requirements.txt with uv.")
@click.option("--no-install", is_flag=True, help="Skip installing the package in a throwaway daemon.")
@token_options
def marketplace(source: Path, fork: str | None, dry_run: bool, marketplace_url: str, no_resolve: bool,
                no_install: bool, token_file: Path | None, token: str | None) -> None:
    """Open the Marketplace pull request for SOURCE: the package at <author>/<name>/ on a fork's branch
    bump-<name>-plugin-<version>, the template's checklist filled from publish check."""
    from plugdock.publishing import marketplace as mp
    from plugdock.publishing.github import GitHub, parse_repo
    from plugdock.publishing.run import passed

    if fork is not None:
        parse_repo(fork, "--fork")
    secret = None if dry_run else _token(token_file, token)
    candidate, results = _run_checks(source, marketplace_url, None, not no_resolve, not no_install)
    _print_results(results, False, candidate.asset_name, err=True)
    if dry_run:
        plan = mp.plan(candidate, results, fork=fork)
        click.echo("\nwould:")
        for number, step in enumerate(plan.steps, 1):
            click.echo(f"  {number}. {step}")
        click.echo(f"\npull request title: {plan.title}\n\n{plan.body}")
        if not passed(results):
            raise SystemExit(1)
        return
    if not passed(results):
        raise PlugdockError("the Marketplace checks failed (see above): fix them before opening the pull request")
    with GitHub(secret, _api_url()) as gh:
        plan = mp.plan(candidate, results, fork=fork, new_plugin=mp.is_new_plugin(gh, candidate))
        url = mp.open_pull_request(gh, plan, candidate)
    click.echo(f"pull request for {candidate.marketplace_path} on branch {plan.branch}:", err=True)
    click.echo(url)


@publish.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def icon(directory: Path) -> None:
    """Write an icon of the plugin's own (derived from author/name) to the file manifest.yaml names."""
    from plugdock.publishing.icon import plugin_icon_svg
    from plugdock.schema.yaml_source import load_yaml

    manifest = load_yaml((directory / "manifest.yaml").read_bytes(), "manifest.yaml").data
    if not isinstance(manifest, dict) or not manifest.get("icon"):
        raise PlugdockError(f"{directory / 'manifest.yaml'}: no icon field to write the icon for")
    target = directory / "_assets" / str(manifest["icon"])
    if target.suffix.lower() != ".svg":
        raise PlugdockError(f"manifest.yaml icon {manifest['icon']!r}: the generated icon is SVG; name an .svg file")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(plugin_icon_svg(str(manifest.get("author", "")), str(manifest.get("name", ""))), "utf-8")
    click.echo(f"wrote {target}")


class PackageSource(click.ParamType):  # type: ignore[type-arg]
    """A package file, or ``github:OWNER/NAME@VERSION``: the release's package asset, downloaded for the command
    (GITHUB_TOKEN or GH_TOKEN for a private repository, GITHUB_API_URL for GitHub Enterprise)."""

    name = "PACKAGE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        if isinstance(value, Path):
            return value
        text = str(value)
        if text.startswith("github:"):
            return _download(text, ctx)
        path = Path(text)
        if not path.is_file():
            self.fail(f"{text!r}: no such package file (or give github:OWNER/NAME@VERSION)", param, ctx)
        return path


def _download(spec: str, ctx: click.Context | None) -> Path:
    from plugdock.publishing.github import GitHub
    from plugdock.publishing.release import fetch_release_package

    token = next((os.environ[n] for n in TOKEN_ENV if os.environ.get(n)), None)
    with GitHub(token, _api_url()) as gh:
        name, data = fetch_release_package(gh, spec)
    folder = Path(tempfile.mkdtemp(prefix="plugdock-github-"))
    if ctx is not None:
        ctx.call_on_close(lambda: shutil.rmtree(folder, ignore_errors=True))
    target = folder / Path(name).name
    target.write_bytes(data)
    click.echo(f"downloaded {target.name} ({len(data)} bytes) from {spec}", err=True)
    return target


publish.add_command(publish_registry)  # plugdock publish registry: the registry's own module
COMMANDS = [publish]
