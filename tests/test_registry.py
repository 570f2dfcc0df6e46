"""``plugdock registry serve`` as Dify sees it: a real server on loopback, called exactly as the Dify API server's
``api/core/helper/marketplace.py`` calls the Marketplace, its answers validated with the shapes Dify parses them
into (``api/core/plugin/entities/marketplace.py``), and packages published with ``plugdock publish registry``.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from click.testing import CliRunner
from pydantic import BaseModel, model_validator

from daemon_harness import KEY, DaemonProcess, eventually, free_port
from plugdock.cli.main import cli
from plugdock.packaging.archive import PackageArchive
from plugdock.packaging.checksum import package_checksum
from plugdock.packaging.signature import load_public_key, verify_package, write_keypair

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TOKEN = "registry-test-token"


# -- Dify's side: the entities it validates and the requests it makes -------------------------------------------

class I18nObject(BaseModel):
    en_US: str
    zh_Hans: str | None = None


class PluginResourceRequirements(BaseModel):
    memory: int
    permission: dict[str, Any] | None = None


class MarketplacePluginDeclaration(BaseModel):
    """Dify's required fields and types; endpoint/model/tool emptied as its before-validator does."""

    name: str
    org: str
    plugin_id: str
    icon: str
    label: I18nObject
    brief: I18nObject
    resource: PluginResourceRequirements
    endpoint: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    tool: dict[str, Any] | None = None
    latest_version: str
    latest_package_identifier: str
    status: str
    deprecated_reason: str
    alternative_plugin_id: str

    @model_validator(mode="before")
    @classmethod
    def transform_declaration(cls, data: dict[str, Any]) -> dict[str, Any]:
        for key in ("endpoint", "model", "tool"):
            if key in data and not data[key]:
                del data[key]
        return data


class MarketplacePluginSnapshot(BaseModel):
    org: str
    name: str
    latest_version: str
    latest_package_identifier: str
    latest_package_url: str


class DifyMarketplace:
    """The requests of Dify's marketplace.py, against MARKETPLACE_API_URL=base (yarl's ``/`` is a join)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def get_plugin_pkg_url(self, plugin_unique_identifier: str) -> str:
        if "/" in plugin_unique_identifier and ":" in plugin_unique_identifier:
            if "@" in plugin_unique_identifier:
                plugin_unique_identifier = plugin_unique_identifier.split("@")[0]
            org_and_name, version = plugin_unique_identifier.rsplit(":", 1)
            org, name = org_and_name.split("/", 1)
            return f"{self.base}/api/v1/plugins/{org}/{name}/{version}/download"
        return str(httpx.URL(f"{self.base}/api/v1/plugins/download",
                             params={"unique_identifier": plugin_unique_identifier}))

    def download(self, url: str, max_size: int = 52428800) -> bytes:
        """download_with_size_limit: a HEAD for the size first, then the streamed GET."""
        head = httpx.head(url, follow_redirects=True)
        if head.status_code == 404:
            raise ValueError("file not found")
        assert int(head.headers["content-length"]) <= max_size
        with httpx.stream("GET", url, follow_redirects=True) as response:
            if response.status_code == 404:
                raise ValueError("file not found")
            response.raise_for_status()
            return b"".join(response.iter_bytes())

    def batch_fetch_plugin_manifests(self, plugin_ids: list[str]) -> list[MarketplacePluginDeclaration]:
        response = httpx.post(f"{self.base}/api/v1/plugins/batch", json={"plugin_ids": plugin_ids},
                              headers={"X-Dify-Version": "1.10.0"})
        response.raise_for_status()
        return [MarketplacePluginDeclaration.model_validate(p) for p in response.json()["data"]["plugins"]]

    def record_install_plugin_event(self, plugin_unique_identifier: str) -> None:
        response = httpx.post(f"{self.base}/api/v1/stats/plugins/install_count",
                              json={"unique_identifier": plugin_unique_identifier})
        response.raise_for_status()

    def fetch_global_plugin_manifest(self) -> list[MarketplacePluginSnapshot]:
        response = httpx.get(f"{self.base}/api/v1/dist/plugins/manifest.json", headers={"X-Dify-Version": "1.10.0"},
                             timeout=30)
        response.raise_for_status()
        return [MarketplacePluginSnapshot.model_validate(p) for p in response.json().get("plugins", [])]


# -- the registry under test ------------------------------------------------------------------------------------

class Registry:
    def __init__(self, home: Path, *args: str, token: str | None = TOKEN, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PLUGDOCK_REGISTRY")}
        if token is not None:
            environ["PLUGDOCK_REGISTRY_TOKEN"] = token
        self.proc = subprocess.Popen([sys.executable, "-m", "plugdock", "registry", "serve", "--home", str(home),
                                      "--port", str(self.port), *args], env={**environ, **env},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            eventually(self._answering, "registry did not start", every=0.1)
        except AssertionError:  # still starting: stop it, or reading its stderr would wait forever
            self.proc.kill()
            self.proc.wait()
            self._not_started()
        self.dify = DifyMarketplace(self.url)

    def _answering(self) -> bool:
        """Whether it answers yet; one that exited fails at once instead of being polled to the bound."""
        try:
            if httpx.get(f"{self.url}/", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        if self.proc.poll() is not None:
            self._not_started()
        return False

    def _not_started(self) -> NoReturn:
        err = self.proc.stderr.read().decode() if self.proc.stderr else ""
        raise RuntimeError(f"registry did not start: {err[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    server = Registry(tmp_path / "registry")
    yield server
    server.stop()


def publish(url: str, source: Path, token: str | None = TOKEN) -> tuple[int, str]:
    env = {"PLUGDOCK_REGISTRY_TOKEN": token} if token is not None else {}
    result = CliRunner().invoke(cli, ["publish", "registry", url, str(source)], env=env)
    return result.exit_code, result.output


def echo_version(tmp_path: Path, version: str, description: str = "") -> Path:
    plugin = tmp_path / f"echo-{version}-{uuid.uuid4().hex[:8]}"
    shutil.copytree(EXAMPLES / "echo_tool", plugin)
    manifest = plugin / "manifest.yaml"
    text = manifest.read_text().replace("version: 0.0.1", f"version: {version}")
    manifest.write_text(text + (f"# {description}\n" if description else ""))
    return plugin


def checksum_of(data: bytes) -> str:
    return package_checksum(PackageArchive.open(data).read_all())


# -- the tests --------------------------------------------------------------------------------------------------

def test_dify_finds_downloads_and_counts_a_published_plugin(registry: Registry) -> None:
    code, output = publish(registry.url, EXAMPLES / "echo_tool")
    assert code == 0, output
    identifier = output.strip().splitlines()[-1]
    assert identifier.startswith("plugdock/echo_tool:0.0.1@")

    (plugin,) = registry.dify.batch_fetch_plugin_manifests(["plugdock/echo_tool", "nobody/nothing"])
    assert plugin.plugin_id == "plugdock/echo_tool" and plugin.latest_version == "0.0.1"
    assert plugin.latest_package_identifier == identifier and plugin.status == "active"
    assert plugin.label.en_US == "Echo Tool" and plugin.tool is not None and plugin.tool["tools"]
    assert httpx.get(plugin.icon).headers["content-type"] == "image/svg+xml"

    by_version = registry.dify.download(registry.dify.get_plugin_pkg_url(identifier))
    by_identifier = registry.dify.download(f"{registry.url}/api/v1/plugins/download?unique_identifier={identifier}")
    assert by_version == by_identifier and checksum_of(by_version) == identifier.rsplit("@", 1)[1]

    registry.dify.record_install_plugin_event(identifier)
    detail = httpx.post(f"{registry.url}/api/v1/plugins/batch", json={"plugin_ids": ["plugdock/echo_tool"]}).json()
    assert detail["data"]["plugins"][0]["install_count"] == 1
    (snap,) = registry.dify.fetch_global_plugin_manifest()
    assert snap.latest_package_identifier == identifier and registry.dify.download(snap.latest_package_url)
    found = httpx.post(f"{registry.url}/api/v1/plugins/search/advanced", json={"query": "echo", "category": "tool"})
    assert found.json()["data"]["total"] == 1
    assert "plugdock/echo_tool" in httpx.get(registry.url).text and identifier in httpx.get(registry.url).text


def test_versions_are_immutable_and_a_yanked_one_still_installs_by_exact_reference(
    registry: Registry, tmp_path: Path
) -> None:
    first = publish(registry.url, echo_version(tmp_path, "0.0.1"))[1].strip().splitlines()[-1]
    second = publish(registry.url, echo_version(tmp_path, "0.0.2"))[1].strip().splitlines()[-1]
    assert publish(registry.url, echo_version(tmp_path, "0.0.2"))[1].startswith("already published")
    code, output = publish(registry.url, echo_version(tmp_path, "0.0.2", "changed"))
    assert code == 1 and "published already as " + second in output and "bump the version" in output
    assert registry.dify.batch_fetch_plugin_manifests(["plugdock/echo_tool"])[0].latest_version == "0.0.2"

    result = CliRunner().invoke(cli, ["registry", "yank", registry.url, second, "--reason", "broken"],
                                env={"PLUGDOCK_REGISTRY_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    (plugin,) = registry.dify.batch_fetch_plugin_manifests(["plugdock/echo_tool"])
    assert (plugin.latest_version, plugin.latest_package_identifier) == ("0.0.1", first)
    assert checksum_of(registry.dify.download(registry.dify.get_plugin_pkg_url(second))) == second.rsplit("@")[1]
    wrong = second.rsplit("@", 1)[0] + "@" + "0" * 64
    with pytest.raises(ValueError, match="file not found"):
        registry.dify.download(f"{registry.url}/api/v1/plugins/download?unique_identifier={wrong}")
    versions = httpx.get(f"{registry.url}/api/v1/plugins/plugdock/echo_tool/versions").json()["data"]["versions"]
    assert [(v["version"], v["yanked"], v["yank_reason"]) for v in versions] == [("0.0.2", True, "broken"),
                                                                              ("0.0.1", False, "")]
    assert "class=yanked" in httpx.get(registry.url).text
    # what `plugdock publish check --marketplace-url` (the dify-plugins pre-check) asks: the version exists
    from plugdock.publishing.live_checks import version_on_marketplace
    from plugdock.publishing.source import load_candidate

    assert version_on_marketplace(load_candidate(echo_version(tmp_path, "0.0.2")), registry.url)
    assert not version_on_marketplace(load_candidate(echo_version(tmp_path, "0.0.3")), registry.url)


def test_uploads_need_the_servers_token(tmp_path: Path) -> None:
    server = Registry(tmp_path / "open", token=None)
    try:
        code, output = publish(server.url, EXAMPLES / "echo_tool")
        assert code == 1 and "uploads are off" in output and "PLUGDOCK_REGISTRY_TOKEN" in output
    finally:
        server.stop()
    server = Registry(tmp_path / "closed")
    try:
        code, output = publish(server.url, EXAMPLES / "echo_tool", token="not-the-token")
        assert code == 1 and "401" in output and "a valid token is required" in output
        assert server.dify.batch_fetch_plugin_manifests(["plugdock/echo_tool"]) == []
    finally:
        server.stop()


def test_a_signing_registry_serves_packages_a_daemon_trusts_with_its_key(tmp_path: Path) -> None:
    private, public = write_keypair("registry", tmp_path, 2048)
    server = Registry(tmp_path / "registry", "--key", str(private))
    try:
        identifier = publish(server.url, EXAMPLES / "echo_tool")[1].strip().splitlines()[-1]
        data = server.dify.download(server.dify.get_plugin_pkg_url(identifier))
        assert httpx.get(f"{server.url}/api/v1/key").content == public.read_bytes()
        info = verify_package(PackageArchive.open(data), [load_public_key(public)])
        assert info.category == "community" and checksum_of(data) == identifier.rsplit("@", 1)[1]
        assert server.dify.batch_fetch_plugin_manifests(["plugdock/echo_tool"])[0].model_dump()["plugin_id"]
    finally:
        server.stop()
    daemon = DaemonProcess(tmp_path / "daemon", FORCE_VERIFYING_SIGNATURE="true",
                           THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED="true",
                           THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS=str(public))
    daemon.start()
    try:
        assert daemon.upload(data) == identifier  # the daemon computes the same identifier and accepts the key
    finally:
        daemon.stop()


def test_postgresql_holds_the_catalogue(tmp_path: Path) -> None:
    from official_state import postgres_database

    try:
        httpx.get("http://127.0.0.1:5432", timeout=1)
    except httpx.ConnectError:
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    except httpx.HTTPError:
        pass
    with postgres_database("registry") as url:
        server = Registry(tmp_path / "registry", "--db", url)
        try:
            identifier = publish(server.url, EXAMPLES / "echo_tool")[1].strip().splitlines()[-1]
        finally:
            server.stop()
        server = Registry(tmp_path / "another-home", "--db", url, "--storage", str(tmp_path / "registry" / "packages"))
        try:  # a restarted registry (another home) finds it in the database
            (plugin,) = server.dify.batch_fetch_plugin_manifests(["plugdock/echo_tool"])
            assert plugin.latest_package_identifier == identifier
            assert server.dify.download(server.dify.get_plugin_pkg_url(identifier))
        finally:
            server.stop()
    assert not (tmp_path / "registry" / "registry.db").exists()


def test_packages_in_s3_compatible_storage(tmp_path: Path) -> None:
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    port = free_port()
    s3 = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    s3.start()
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
    try:
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket="plugins")
        server = Registry(tmp_path / "registry", "--storage", f"s3://plugins/dify?endpoint=http://127.0.0.1:{port}",
                          **keys)
        try:
            identifier = publish(server.url, EXAMPLES / "echo_tool")[1].strip().splitlines()[-1]
            data = server.dify.download(server.dify.get_plugin_pkg_url(identifier))
        finally:
            server.stop()
        checksum = identifier.rsplit("@", 1)[1]
        stored = client.get_object(Bucket="plugins", Key=f"dify/{checksum}.difypkg")["Body"].read()
        assert stored == data and checksum_of(data) == checksum
        assert not (tmp_path / "registry" / "packages").exists() or not any((tmp_path / "registry" / "packages")
                                                                            .iterdir())
        assert zipfile.ZipFile(io.BytesIO(data)).read("manifest.yaml")
    finally:
        s3.stop()


@pytest.mark.slow
def test_a_daemon_installs_a_bundles_marketplace_member_from_the_registry(registry: Registry, tmp_path: Path) -> None:
    """plugdock's daemon fetches a bundle's ``marketplace`` members from MARKETPLACE_API_URL itself."""
    from plugdock.packaging.build import build_bundle
    from test_daemon_bundles import make_bundle

    assert publish(registry.url, EXAMPLES / "typed_calculator")[0] == 0
    bundle = tmp_path / "b.difybndl"
    member = "  - type: marketplace\n    value:\n      marketplace_pattern: plugdock/typed_calculator:0.0.1\n"
    bundle.write_bytes(build_bundle(make_bundle(tmp_path, member)))
    daemon = DaemonProcess(tmp_path / "home", MARKETPLACE_API_URL=registry.url).start()
    try:
        done = subprocess.run([sys.executable, "-m", "plugdock", "install", str(bundle), "--daemon", daemon.url,
                               "--tenant", "t1"], env={**os.environ, "PLUGDOCK_KEY": KEY}, capture_output=True,
                              text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr
        ids = daemon.data(daemon.client.get("/plugin/t1/management/installation/ids"))["plugin_ids"]
        assert ids == ["plugdock/typed_calculator"]
    finally:
        daemon.stop()


def test_the_database_refuses_a_second_identifier_for_one_version(tmp_path: Path) -> None:
    """Two uploads of one version with other contents, racing past the check: the unique index decides."""
    import datetime as dt

    from plugdock.registry.store import Catalog, PackageVersion

    catalog = Catalog(f"sqlite:///{tmp_path / 'r.db'}")

    def row(checksum: str) -> PackageVersion:
        return PackageVersion(unique_identifier=f"a/b:0.0.1@{checksum}", plugin_id="a/b", org="a", name="b",
                              version="0.0.1", checksum=checksum, category="tool", declaration={}, readme="",
                              icon="", size=1, signed=False, yanked=False, yank_reason="", install_count=0,
                              created_at=dt.datetime.now(dt.UTC))

    assert catalog.add(row("1" * 64)) is not None
    assert catalog.add(row("1" * 64)) is not None  # the same identifier again: already there
    assert catalog.add(row("2" * 64)) is None
