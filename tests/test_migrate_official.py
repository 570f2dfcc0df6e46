"""``plugdock migrate-from-official``: an official daemon's PostgreSQL database and storage folder, built as it
builds them, imported into a fresh plugdock home — dry run first (nothing written), then the import (a broken
and a missing package skipped, the rest installed), then again (nothing changes, and it says so); then a daemon
on that home serves the installations, endpoints (settings as Dify encrypted them) and storage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from daemon_harness import KEY, DaemonProcess, enterable
from fake_host import INNER_KEY, FakeHost, seal
from official_state import OfficialDaemon, postgres_database
from plugdock.daemon.migration.importer import Planner
from plugdock.daemon.migration.official import OfficialEndpoint, OfficialInstallation, OfficialState
from plugdock.daemon.migration.report import Report
from plugdock.daemon.migration.target import Snapshot
from plugdock.daemon.state.db import Database
from plugdock.daemon.state.kvstore import KVStore, row_cost
from plugdock.daemon.state.models import EndpointRecord, Installation, PluginRecord, StorageUsage
from plugdock.packaging.build import build_package
from test_host_routing import GROUP  # the same endpoint group: a secret api_key and a greeting

from conftest import make_plugin

EXAMPLES = Path(__file__).parent.parent / "examples"
GARBLED = "plugdock/garbled:0.0.1@" + "ab" * 32  # sorts between echo_tool and hello_endpoint
MISSING = "plugdock/missing:0.0.1@" + "cd" * 32
REMOTE = "someone/debugged:0.0.1@" + "ef" * 32

SHOW = '''
import json
from werkzeug import Response
from plugdock.sdk import Endpoint


class Show(Endpoint):
    def _invoke(self, r, values, settings):
        stored = self.session.storage.get("greeting").decode()
        return Response(json.dumps({**settings, "stored": stored}), status=200, content_type="application/json")
'''


def hooks_plugin(root: Path) -> Path:
    """An extension whose settings hold a secret: Dify encrypted it, only the host can open it."""
    hooks = make_plugin(root, kind="extension", name="hooks")
    (hooks / "group" / "hooks.yaml").write_text(GROUP)
    (hooks / "endpoints" / "show.yaml").write_text('path: "/show"\nmethod: "GET"\nextra:\n  python:\n'
                                                   "    source: endpoints/show.py\n")
    (hooks / "endpoints" / "show.py").write_text(SHOW)
    return hooks


def run_migrate(home: Path, url: str, storage: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DB_URL", "PLUGDOCK_DB_URL", "PLUGDOCK_CONFIG")}
    env.update(PLUGDOCK_HOME=str(home), SERVER_KEY=KEY, PLUGDOCK_OFFICIAL_DB_URL=url)
    result = subprocess.run([sys.executable, "-m", "plugdock", "migrate-from-official", "--storage", str(storage),
                             *args], env=env, capture_output=True, text=True, timeout=900, check=False)
    return result.returncode, result.stdout, result.stderr


def counts(report: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    return {kind: (c["created"], c["unchanged"], c["skipped"]) for kind, c in report["counts"].items()}


def reason(report: dict[str, Any], kind: str, item: str) -> str:
    """Why the one skipped item of ``kind`` whose description mentions ``item`` was skipped."""
    (found,) = [s["reason"] for s in report["skipped"] if s["kind"] == kind and item in s["item"]]
    return str(found)


@pytest.mark.slow
def test_official_state_is_imported_once_and_served(tmp_path: Path) -> None:
    storage, home = tmp_path / "official-storage", tmp_path / "home"
    t1, t2 = str(uuid.uuid4()), str(uuid.uuid4())
    echo, hello = build_package(EXAMPLES / "echo_tool"), build_package(EXAMPLES / "hello_endpoint")
    hooks = build_package(hooks_plugin(tmp_path / "src" / "hooks"))
    flaky = make_plugin(tmp_path / "src" / "flaky", name="flaky")  # decodes, then its environment is refused
    (flaky / "requirements.txt").write_text("plugdock>=0.1\nextra @ https://example.invalid/extra-1.0-py3-none-any.whl\n")
    flaky_pkg = build_package(flaky)
    with postgres_database() as url:
        official = OfficialDaemon(url, storage)
        official.package(str(echo.identifier), echo.data)
        official.package(str(hello.identifier), hello.data, folder="plugin_packages")  # the upload cache
        official.package(str(hooks.identifier), hooks.data)
        official.package(GARBLED, b"not a zip at all")
        official.package(str(flaky_pkg.identifier), flaky_pkg.data)
        ids = {"echo1": official.install(t1, str(echo.identifier)),
               "hello": official.install(t1, str(hello.identifier)),
               "hooks": official.install(t1, str(hooks.identifier)), "garbled": official.install(t1, GARBLED),
               "flaky": official.install(t1, str(flaky_pkg.identifier)),
               "remote": official.install(t1, REMOTE, runtime_type="remote"),
               "echo2": official.install(t2, str(echo.identifier)), "missing": official.install(t2, MISSING)}
        hello_ep, hello_hook = official.endpoint(t1, "plugdock/hello_endpoint", {"greeting": "Hi"})
        hooks_settings = {"api_key": seal("k-123"), "greeting": "yo"}  # as Dify's invoke/encrypt returned them
        hooks_ep, hooks_hook = official.endpoint(t1, "tester/hooks", hooks_settings)
        official.endpoint(t1, "plugdock/garbled", {})
        official.endpoint(t2, "plugdock/ghost", {})
        official.store(t1, "plugdock/echo_tool", "greeting", b"hello")
        official.store(t1, "plugdock/echo_tool", "nested/deep/key", bytes(range(256)))
        official.store(t2, "plugdock/hello_endpoint", "count", b"3")  # kept though t2 has not installed it
        official.store(t1, "tester/hooks", "greeting", b"stored hello")  # read back by the plugin below
        (storage / "persistence" / t1 / "plugdock/echo_tool" / "link").symlink_to("/etc/hostname")
        official.close()
        enterable(home)
        home.rmdir()

        code, out, err = run_migrate(home, url, storage, "--dry-run", "--json")
        assert code == 1 and "7 item(s) could not be imported" in err, err
        dry = json.loads(out)  # the flaky package's environment is not built in a dry run: its refusal comes later
        assert dry["dry_run"] is True and counts(dry) == {"package": (4, 0, 2), "installation": (5, 0, 3),
                                                          "endpoint": (2, 0, 2), "storage": (4, 0, 1)}
        assert not home.exists()  # a dry run writes nothing, not even the home

        code, out, err = run_migrate(home, url, storage, "--json")
        assert code == 1, err
        report = json.loads(out)
        assert counts(report) == {"package": (3, 0, 3), "installation": (4, 0, 4), "endpoint": (2, 0, 2),
                                  "storage": (4, 0, 1)}
        assert "zip" in reason(report, "package", GARBLED)
        assert "its package is not in the storage folder" in reason(report, "package", MISSING)
        assert "direct URL requirements are off" in reason(report, "package", "tester/flaky")
        assert reason(report, "installation", GARBLED) == f"its package {GARBLED} was not imported"
        assert reason(report, "installation", REMOTE).startswith("a remote-debugging session's installation")
        assert [s["by_design"] for s in report["skipped"] if s["item"].startswith(REMOTE)] == [True]
        assert reason(report, "endpoint", "plugdock/garbled") == "its installation was not imported"
        assert reason(report, "endpoint", "plugdock/ghost") == ("the official database has no installation of "
                                                                "plugdock/ghost for this tenant")
        assert "is a symbolic link, not a stored value" in reason(report, "storage", "'link'")
        assert any("DIFY_INNER_API_URL" in w for w in report["warnings"])

        db = Database(f"sqlite:///{home / 'plugdock.db'}")
        try:
            with db.session() as s:
                installations = {i.id: (i.tenant_id, i.unique_identifier, i.runtime_type, i.source)
                                 for i in s.execute(select(Installation)).scalars()}
                endpoints = {e.id: (e.hook_id, e.tenant_id, e.unique_identifier, json.loads(e.settings))
                             for e in s.execute(select(EndpointRecord)).scalars()}
                records = {r.unique_identifier: r.installed for r in s.execute(select(PluginRecord)).scalars()}
                usage = s.get(StorageUsage, (t1, "plugdock/echo_tool"))
                assert usage is not None and usage.used == row_cost("greeting", 5) + row_cost("nested/deep/key", 256)
            assert installations == {
                ids["echo1"]: (t1, str(echo.identifier), "local", "marketplace"),
                ids["hello"]: (t1, str(hello.identifier), "local", "marketplace"),
                ids["hooks"]: (t1, str(hooks.identifier), "local", "marketplace"),
                ids["echo2"]: (t2, str(echo.identifier), "local", "marketplace")}
            assert endpoints == {hello_ep: (hello_hook, t1, str(hello.identifier), {"greeting": "Hi"}),
                                 hooks_ep: (hooks_hook, t1, str(hooks.identifier), hooks_settings)}
            assert records == {str(p.identifier): 1 for p in (echo, hello, hooks)}  # nothing of the garbled one
            for checksum in ("ab" * 32, flaky_pkg.identifier.checksum):  # nothing of either failure stays
                assert not (home / "packages" / f"{checksum}.difypkg").exists()
            assert not [p for p in (home / "plugins").iterdir() if "garbled" in p.name or "flaky" in p.name]
            kv = KVStore(db)
            assert kv.get(t1, "plugdock/echo_tool", "nested/deep/key") == bytes(range(256))
            assert kv.get(t2, "plugdock/hello_endpoint", "count") == b"3"
        finally:
            db.close()

        code, out, err = run_migrate(home, url, storage)
        assert code == 1, err
        assert "nothing changed: the plugdock home already holds everything" in out
        assert "packages       created 0, unchanged 3, skipped 3" in out
        code, out, _ = run_migrate(home, url, storage, "--json")
        assert counts(json.loads(out)) == {"package": (0, 3, 3), "installation": (0, 4, 4), "endpoint": (0, 2, 2),
                                           "storage": (0, 4, 1)}

    host = FakeHost()
    daemon = DaemonProcess(home, DIFY_INNER_API_URL=host.url, DIFY_INNER_API_KEY=INNER_KEY).start()
    try:
        listing = daemon.data(daemon.client.get(f"/plugin/{t1}/management/list"))
        assert sorted(p["installation_id"] for p in listing["list"]) == sorted([ids["echo1"], ids["hello"],
                                                                                ids["hooks"]])
        events = daemon.dispatch("tool/invoke", "plugdock/echo_tool", {
            "provider": "echo_tool", "tool": "echo_tool", "credentials": {}, "tool_parameters": {"text": "moved"}},
            tenant=t2)
        assert events[0]["data"]["message"]["text"] == "moved"
        public = httpx.Client(base_url=daemon.url, timeout=120)
        assert public.get(f"/e/{hello_hook}/hello", params={"name": "you"}).text == "Hi, you!"
        assert public.get(f"/e/{hooks_hook}/show").json() == {"api_key": "k-123", "greeting": "yo",
                                                             "stored": "stored hello"}
        hooks_listing = daemon.data(daemon.client.get(f"/plugin/{t1}/endpoint/list"))
        assert {e["hook_id"] for e in hooks_listing} == {hello_hook, hooks_hook}
    finally:
        daemon.stop()
        host.close()


def test_not_an_official_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "storage").mkdir()
    with postgres_database("empty") as url:
        code, _, err = run_migrate(tmp_path / "home", url, tmp_path / "storage", "--dry-run")
    assert code == 1
    assert "error: the database has no table plugin_installations, endpoints, tenant_storages: not an official " \
           "dify-plugin-daemon database (tables found: none)" in err
    code, _, err = run_migrate(tmp_path / "home", "postgresql://postgres@127.0.0.1:1/none", tmp_path / "storage")
    assert code == 1 and err.startswith("error: --db: cannot read the official database:") and "Traceback" not in err
    assert not (tmp_path / "home" / "plugdock.db").exists()


def _installation(**values: Any) -> OfficialInstallation:
    base: dict[str, Any] = {"id": "i1", "tenant_id": "t1", "plugin_id": "a/p", "unique_identifier": "a/p:1.0.0@" +
                            "0" * 64, "runtime_type": "local", "source": "", "meta": {}, "created_at": None,
                            "updated_at": None}
    return OfficialInstallation(**{**base, **values})


def test_what_plugdock_holds_is_never_overwritten() -> None:
    """A tenant with another version in plugdock, a hook id plugdock uses, a key plugdock changed: all kept."""
    uid = "a/p:1.0.0@" + "0" * 64
    state = OfficialState(installations=[_installation(), _installation(id="i2", tenant_id="t2"),
                                         _installation(id="i3", tenant_id="t3", plugin_id="a/q")])
    state.endpoints = [OfficialEndpoint(id="e1", tenant_id="t2", user_id="", plugin_id="a/p", hook_id="h1", name="x",
                                        enabled=True, settings={}, created_at=None, updated_at=None)]
    snap = Snapshot(installations={"i1": ("t1", "a/p", uid), "other": ("t2", "a/p", "a/p:2.0.0@" + "1" * 64)},
                    installed={("t1", "a/p"): ("i1", uid), ("t2", "a/p"): ("other", "a/p:2.0.0@" + "1" * 64)},
                    hooks={"h1": "e9"}, endpoints={"e9": ("h1", "t9", "z/z")}, packages={uid: 1})
    report = Report()
    planner = Planner(state, snap, report)
    planner.installations()
    assert planner.packages() == []  # installed already: unchanged
    planner.endpoints()
    reasons = {(s.kind, s.item.split(" (")[0]): s.reason for s in report.skipped}
    assert reasons[("installation", f"{uid} for tenant t2")] == (
        f"plugdock has a/p:2.0.0@{'1' * 64} installed for this tenant (installation other): kept as it is")
    assert reasons[("installation", f"{uid} for tenant t3")] == ("plugin_id 'a/q' is not the plugin of its "
                                                                 "identifier (a/p)")
    assert reasons[("endpoint", "h1 of a/p for tenant t2")] == "plugdock's endpoint e9 has this hook id: kept as it is"
    assert (report.counts["installation"].unchanged, report.counts["package"].unchanged) == (1, 1)
    assert not planner.plan.installations and not planner.plan.endpoints


def test_a_failing_import_writes_no_row(tmp_path: Path) -> None:
    """A storage value unreadable when the rows are written: the installation before it is rolled back too."""
    import asyncio

    from plugdock.daemon.core import Daemon
    from plugdock.daemon.migration.importer import Plan, apply
    from plugdock.daemon.migration.official import StoredValue
    from plugdock.daemon.settings import Settings

    settings = Settings(home=tmp_path / "home", server_key="k", sandbox="none", remote_installing_enabled=False)
    daemon = Daemon(settings)
    try:
        plan = Plan(installations=[_installation()],
                    storage=[StoredValue("t1", "a/p", "gone", tmp_path / "vanished" / "gone")])
        with pytest.raises(FileNotFoundError):
            apply(daemon, plan, Report())
        with daemon.db.session() as s:
            assert s.execute(select(Installation)).first() is None
            assert s.execute(select(StorageUsage)).first() is None
    finally:
        asyncio.run(daemon.stop())


def test_storage_into_a_postgresql_home(tmp_path: Path) -> None:
    """The plugdock home's database on PostgreSQL too (DB_URL); a plugin id without an author keeps its own keys."""
    storage, tenant = tmp_path / "storage", str(uuid.uuid4())
    with postgres_database() as url, postgres_database("plugdock") as target:
        official = OfficialDaemon(url, storage)
        official.store(tenant, "lonely", "a", b"1")  # persistence/<tenant>/lonely/a
        official.store(tenant, "lonely/nested", "b", b"22")  # an author named like that plugin: not its key
        official.close()
        enterable(tmp_path / "home")
        env_home = tmp_path / "home"
        run = subprocess.run([sys.executable, "-m", "plugdock", "migrate-from-official", "--storage", str(storage),
                              "--json"], env={**os.environ, "PLUGDOCK_HOME": str(env_home), "SERVER_KEY": KEY,
                                              "DB_URL": target, "PLUGDOCK_OFFICIAL_DB_URL": url},
                             capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode == 0, run.stderr
        assert counts(json.loads(run.stdout))["storage"] == (2, 0, 0)
        db = Database(target)
        try:
            kv = KVStore(db)
            assert (kv.get(tenant, "lonely", "a"), kv.get(tenant, "lonely/nested", "b")) == (b"1", b"22")
            assert not kv.exist(tenant, "lonely", "nested/b")
        finally:
            db.close()
