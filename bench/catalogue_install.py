"""The install half of ``python -m bench.catalogue --install``: every package the sweep built, installed and started.

An in-process :class:`~plugdock.daemon.core.Daemon` with the operator's defaults (signature checks aside: the
packages are built here, unsigned) does what ``POST /install/identifiers`` does — decode the upload, build or
reuse the environment from the package's dependency files, install it for a tenant — then starts the plugin as
a first call would and waits for its first heartbeat, then stops it again, so 262 plugins never run at once.

A package the default policy refuses for a reason an operator may lift (a ``git+``/URL requirement, an sdist to
build) is retried in a second daemon with ``PLUGDOCK_ALLOW_DIRECT_URLS`` / ``PLUGDOCK_ALLOW_SDISTS`` on, and the
report says so: the refusal by default is itself the behaviour under test.

The home is kept between runs (``--install-home``): environments are shared and reused, so a second sweep
only re-checks what changed.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bench.environments import official_daemon_env, official_install_commands
from plugdock.daemon.core import Daemon
from plugdock.daemon.settings import Settings
from plugdock.errors import PlugdockError
from plugdock.packaging.uv import uv_binary

TENANT = "catalogue"
# What the default policy refuses that PLUGDOCK_ALLOW_DIRECT_URLS / PLUGDOCK_ALLOW_SDISTS lift: the
# refusal's own words (daemon/plugins/requirements_policy.py), so a rewording fails this sweep loudly.
OPERATOR_SETTINGS = ("PLUGDOCK_ALLOW_DIRECT_URLS", "PLUGDOCK_ALLOW_SDISTS")
OFFICIAL_START_BOUND = 60  # seconds the official way's plugin gets to send its first heartbeat


@dataclass
class Installed:
    plugin: str
    install: str = ""  # "" when the install succeeded, else the daemon's reason
    start: str = ""  # "" when the plugin started and sent its heartbeat, else why not
    seconds: float = 0.0
    environment: str = ""  # the shared environment it runs in
    operator_setting: str = ""  # set when only the opt-in daemon installed it: what the operator had to allow
    official: str = ""  # for a failure: "starts" if installed the official daemon's way it starts, else why not

    @property
    def ok(self) -> bool:
        return not self.install and not self.start


def _settings(home: Path, *, opt_in: bool) -> Settings:
    return Settings(home=home, server_key="catalogue-sweep", remote_installing_enabled=False,
                    force_verifying_signature=False, allow_direct_urls=opt_in, allow_sdists=opt_in,
                    launch_timeout=180, sources={"home": "bench.catalogue --install-home"})


def _needs_operator(reason: str) -> bool:
    return any(name in reason for name in OPERATOR_SETTINGS)


async def _install_one(daemon: Daemon, name: str, data: bytes) -> Installed:
    out = Installed(name)
    began = time.monotonic()
    try:
        decoded = await asyncio.to_thread(daemon.installer.decode, data)
        identifier = str(decoded.identifier)
        await daemon.installer.prepare(identifier)
        await daemon.installer.install_for_tenant(TENANT, identifier, "package", {})
    except PlugdockError as exc:
        out.install = exc.message
        out.seconds = time.monotonic() - began
        return out
    record = daemon.installer.record(identifier)
    out.environment = str(record.env_id or "")
    try:
        instance = await daemon.supervisor.ready(identifier)
        await instance.stop()
    except PlugdockError as exc:
        out.start = exc.message
    out.seconds = time.monotonic() - began
    return out


async def _sweep(home: Path, packages: list[tuple[str, bytes]], *, opt_in: bool, jobs: int) -> list[Installed]:
    daemon = Daemon(_settings(home, opt_in=opt_in))
    await daemon.start()
    gate = asyncio.Semaphore(jobs)
    done = 0

    async def one(name: str, data: bytes) -> Installed:
        nonlocal done
        async with gate:
            result = await _install_one(daemon, name, data)
        done += 1
        mark = "ok" if result.ok else "FAILED"
        sys.stderr.write(f"[install {done}/{len(packages)}] {name}: {mark} in {result.seconds:.0f} s\n")
        return result

    try:
        return list(await asyncio.gather(*(one(name, data) for name, data in packages)))
    finally:
        await daemon.stop()


def official_start(data: bytes, cache: Path) -> str:
    """Install ``data`` as the official daemon does (``uv venv --python 3.12``, then ``uv sync --no-dev``
    [``--frozen``] or ``uv pip install -r requirements.txt``, with only its environment variables) and run
    ``python -m main`` until its first heartbeat: "" when it comes, else why not. For a plugin plugdock could
    not start, this says whether the official stack can."""
    uv = uv_binary()
    if uv is None:
        return "uv is not installed"
    with tempfile.TemporaryDirectory(prefix="plugdock-official-") as scratch:
        folder = Path(scratch)
        zipfile.ZipFile(io.BytesIO(data)).extractall(folder)
        env = official_daemon_env(folder, cache)
        for cmd in official_install_commands(folder, uv):
            done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                return f"{' '.join(cmd[1:3])} failed: {done.stderr.strip().splitlines()[-1:]}"
        run_env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))},
                   "INSTALL_METHOD": "local"}
        proc = subprocess.Popen([str(folder / ".venv" / "bin" / "python"), "-m", "main"], cwd=folder, env=run_env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=OFFICIAL_START_BOUND)
        except subprocess.TimeoutExpired:  # still running: did it say it is alive?
            proc.kill()
            out, err = proc.communicate()
        if b'"heartbeat"' in out:
            return ""
        return "exits: " + " | ".join(err.decode("utf-8", "replace").strip().splitlines()[-2:])


def install_all(home: Path, packages: list[tuple[str, bytes]], jobs: int = 2) -> list[Installed]:
    """Install and start each ``(folder, package bytes)``; refusals an operator setting lifts are retried with it."""
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o755)  # plugin users enter the home to reach their code (the sandbox checks it)
    results = asyncio.run(_sweep(home / "default", packages, opt_in=False, jobs=jobs))
    retry = [(r.plugin, data) for r, (_, data) in zip(results, packages, strict=True) if _needs_operator(r.install)]
    if retry:
        again = {r.plugin: r for r in asyncio.run(_sweep(home / "opt-in", retry, opt_in=True, jobs=jobs))}
        for result in results:
            if result.plugin in again:
                refusal = result.install
                result.__dict__.update(again[result.plugin].__dict__)
                result.operator_setting = next(n for n in OPERATOR_SETTINGS if n in refusal)
    data = dict(packages)
    for result in results:
        if result.start or result.install:  # the peer's verdict on what plugdock could not run
            sys.stderr.write(f"[official daemon's way] {result.plugin}\n")
            result.official = official_start(data[result.plugin], home / "official-uv-cache") or "starts"
    return results


def install_report(results: list[Installed], stubs: list[str]) -> list[str]:
    """The failures as a table and the counts; a plugin that holds a stub (a blob the mirror lacks) and does
    not start is counted apart: its start says nothing about plugdock."""
    def stubbed(r: Installed) -> list[str]:
        return [path for path in stubs if path.startswith(f"{r.plugin}/")]

    lines = ["", "| plugin | install | start | installed the official daemon's way |", "|---|---|---|---|"]
    for r in results:
        if not r.ok:
            start = "ok" if not r.start else r.start[:200] if not stubbed(r) else \
                f"not verifiable: {', '.join(stubbed(r))} is a stub"
            lines.append(f"| {r.plugin} | {'ok' if not r.install else r.install[:200]} | {start} | "
                         f"{r.official[:200]} |")
    installed = sum(not r.install for r in results)
    started = sum(r.ok for r in results)
    unverifiable = sum(1 for r in results if not r.install and r.start and stubbed(r))
    environments = len({r.environment for r in results if r.environment})
    lines += ["", f"install: {installed}/{len(results)}   start: {started}/{len(results)}"
              + (f" (+{unverifiable} not verifiable: the mirror lacks a file)" if unverifiable else "") + "   "
              f"shared environments: {environments}   time: {sum(r.seconds for r in results) / 60:.0f} min"]
    lines += [f"  {r.plugin}: refused by default; with {r.operator_setting}=true "
              + ("it installs" if not r.install else "it still fails (see above)")
              for r in results if r.operator_setting]
    both = [r.plugin for r in results if not r.ok and r.official != "starts" and not stubbed(r)]
    only_here = [r.plugin for r in results if not r.ok and r.official == "starts"]
    lines += [f"fail the official daemon's way too (the plugin's own bug, or a host this machine cannot reach): "
              f"{', '.join(both) or 'none'}", f"fail in plugdock only: {', '.join(only_here) or 'none'}"]
    return lines
