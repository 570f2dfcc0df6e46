"""Plugin uids cannot reach loopback services (issue 12, item 4): owner-matched nftables rules, as root.

Connections go to loopback and to this host's own addresses only: nothing here sends a packet off the machine.
Private ranges are checked in the installed ruleset, never by sending to them. A refused connection is
reset at once (ConnectionRefusedError) and never reaches the listener, which the listeners' accept counts show."""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_harness import DaemonProcess
from plugdock.daemon.plugins.network import (
    PRIVATE_V4,
    PRIVATE_V6,
    Endpoint,
    NetworkPolicy,
    NetworkPolicyError,
    policy_for,
)
from plugdock.daemon.plugins.sandbox import home_tag
from plugdock.daemon.settings import Settings, load_settings
from plugdock.errors import PlugdockError

from conftest import make_plugin

NFT = shutil.which("nft") or "/usr/sbin/nft"
# the probe runs as a uid with no access to root's interpreter: the system one needs only the standard library
SYSTEM_PYTHON = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.access(p, os.X_OK)), None)
pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="nftables rules and other uids need root"),
              pytest.mark.skipif(not os.access(NFT, os.X_OK), reason="no nft: scripts/install-system-packages.sh"),
              pytest.mark.skipif(SYSTEM_PYTHON is None, reason="no system python3 for the probe uid")]

PROBE = r'''
import json, socket, sys, threading
results = {}
def attempt(target):
    host, port = target.rsplit(":", 1)
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(3)
        try:
            sock.connect((host, int(port)))
            results[target] = "connected"
        except OSError as exc:
            results[target] = type(exc).__name__
threads = [threading.Thread(target=attempt, args=(t,)) for t in sys.argv[1:]]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(results))
'''


class Listener:
    """A TCP listener that counts the connections it accepted (a refused one never gets there)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.host, self.port = host, int(self.sock.getsockname()[1])
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def target(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def probe(uid: int | None, targets: list[str]) -> dict[str, str]:
    """Connect to every target as ``uid`` (None: as this test, root); what happened to each."""
    assert SYSTEM_PYTHON is not None
    kwargs = {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}
    done = subprocess.run([SYSTEM_PYTHON, "-c", PROBE, *targets], capture_output=True, text=True, timeout=60,
                          check=True, **kwargs)  # type: ignore[call-overload]
    return dict(json.loads(done.stdout))


def unique_uid() -> int:
    """Far above the uids daemons hand out, and random: parallel tests never share one."""
    return random.randrange(6_000_000, 7_000_000)


def host_address(family: int = socket.AF_INET) -> str | None:
    """This host's own non-loopback address (the route's source; a UDP connect sends nothing)."""
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9) if family == socket.AF_INET else ("2001:db8::1", 9))
        except OSError:
            return None
        address = str(sock.getsockname()[0])
    return None if address.startswith("127.") or address == "::1" else address


def tables() -> list[str]:
    listing = json.loads(subprocess.run([NFT, "-j", "list", "tables"], capture_output=True, text=True,
                                        check=True).stdout)
    return [item["table"]["name"] for item in listing["nftables"] if "table" in item]


def table_json(policy: NetworkPolicy) -> list[dict]:
    done = subprocess.run([NFT, "-j", "list", "table", "inet", policy.table], capture_output=True, text=True,
                          check=True)
    return list(json.loads(done.stdout)["nftables"])


def set_elements(policy: NetworkPolicy, name: str) -> list:
    for item in table_json(policy):
        if "set" in item and item["set"]["name"] == name:
            return list(item["set"].get("elem", []))
    raise AssertionError(f"no set {name}")


@pytest.fixture
def policies() -> Iterator[list[NetworkPolicy]]:
    """Policies a test installs; their tables are always removed."""
    made: list[NetworkPolicy] = []
    yield made
    for policy in made:
        policy.remove()
        subprocess.run([NFT, "delete", "table", "inet", policy.table], capture_output=True, check=False)


def make(policies: list[NetworkPolicy], mode: str = "deny-local", allow: list[str] | None = None,
         protected: list[tuple[str, int]] | None = None, **kwargs: object) -> NetworkPolicy:
    policy = NetworkPolicy(secrets.token_hex(6), mode, allow or [], protected or [], **kwargs)  # type: ignore[arg-type]
    policies.append(policy)
    policy.install()
    assert policy.installed, policy.level
    return policy


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for listener in made:
        listener.close()


def test_an_admitted_uid_reaches_no_loopback_service_nor_this_hosts_address(
        policies: list[NetworkPolicy], listeners: list[Listener]) -> None:
    listeners += [Listener("127.0.0.1"), Listener("::1"), Listener("127.0.0.1"), Listener("0.0.0.0")]
    v4, v6, allowed, wildcard = listeners
    own = host_address()
    if own is not None:
        listeners.append(Listener(own))
    policy = make(policies, allow=[allowed.target])
    uid = unique_uid()
    policy.admit(uid)
    services = ["127.0.0.1:5432", "127.0.0.1:6379", "127.0.0.1:3306"]  # PostgreSQL, Redis, MariaDB
    mine = [v4.target, v6.target, f"[::ffff:127.0.0.1]:{v4.port}", f"127.0.0.2:{wildcard.port}",
            f"0.0.0.0:{wildcard.port}",
            *([listeners[4].target] if own else [])]
    as_root = probe(None, [*services, *mine, allowed.target])
    reachable_services = [s for s in services if as_root[s] == "connected"]
    assert all(as_root[t] == "connected" for t in [*mine, allowed.target]), as_root  # root: not admitted
    before = [listener.accepted for listener in listeners]

    as_plugin = probe(uid, [*services, *mine, allowed.target])
    assert all(as_plugin[t] == "ConnectionRefusedError" for t in [*reachable_services, *mine]), as_plugin
    assert as_plugin[allowed.target] == "connected"  # the operator's allow-list
    after = [listener.accepted for listener in listeners]
    assert after[2] == before[2] + 1  # only the allow-listed listener saw the plugin
    assert [a - b for i, (a, b) in enumerate(zip(after, before, strict=True)) if i != 2] == [0] * (len(after) - 1)
    # another uid nobody admitted is not affected
    assert probe(unique_uid(), [v4.target, v6.target]) == {v4.target: "connected", v6.target: "connected"}


def test_packets_without_an_owner_pass_so_everyone_else_still_gets_resets(policies: list[NetworkPolicy]) -> None:
    """The kernel's own resets (a closed port) have no socket owner: they must not fall into the refusals."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{sock.getsockname()[1]}"
    policy = make(policies)
    policy.admit(unique_uid())
    assert probe(None, [closed]) == {closed: "ConnectionRefusedError"}  # not a timeout: the reset arrived
    assert probe(unique_uid(), [closed]) == {closed: "ConnectionRefusedError"}


def test_an_allow_listed_ipv6_or_named_loopback_port_is_reachable(policies: list[NetworkPolicy],
                                                                  listeners: list[Listener]) -> None:
    listeners += [Listener("::1"), Listener("127.0.0.1"), Listener("127.0.0.1")]
    v6, named, other = listeners
    policy = make(policies, allow=[v6.target, f"localhost:{named.port}"])
    uid = unique_uid()
    policy.admit(uid)
    result = probe(uid, [v6.target, named.target, other.target])
    assert result[v6.target] == "connected" and result[named.target] == "connected"
    assert result[other.target] != "connected"
    assert "allowed: [::1]:" in policy.level and f"127.0.0.1:{named.port}" in policy.level


def test_the_builder_alone_reaches_the_package_index(policies: list[NetworkPolicy], listeners: list[Listener]) -> None:
    listeners.append(Listener("127.0.0.1"))
    (index,) = listeners
    policy = make(policies, builder_allow=[Endpoint("127.0.0.1", index.port, "the package index")])
    builder, plugin = unique_uid(), unique_uid()
    policy.admit(builder, builder=True)
    policy.admit(plugin)
    assert probe(builder, [index.target])[index.target] == "connected"
    assert probe(plugin, [index.target])[index.target] != "connected"
    assert "package index, for builds only: 127.0.0.1:" in policy.level


def test_dns_to_a_loopback_resolver_stays_open(policies: list[NetworkPolicy]) -> None:
    resolver = f"127.{random.randrange(1, 250)}.{random.randrange(1, 250)}.53"
    receivers = {}
    for port in (53, 54):
        receivers[port] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receivers[port].bind((resolver, port))
        receivers[port].settimeout(5)
    try:
        policy = make(policies, resolvers=[resolver])
        uid = unique_uid()
        policy.admit(uid)
        code = (f"import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor port in (53, 54):\n"
                f"    try:\n        s.sendto(b'query', ({resolver!r}, port)); print('sent')\n"
                f"    except OSError as exc:\n        print(type(exc).__name__)")
        assert SYSTEM_PYTHON is not None
        done = subprocess.run([SYSTEM_PYTHON, "-c", code], user=uid, group=uid, extra_groups=[],
                              capture_output=True, text=True, timeout=60, check=True)
        assert done.stdout.split() == ["sent", "PermissionError"]  # port 53 only, and the refusal is immediate
        assert receivers[53].recvfrom(16)[0] == b"query"
        receivers[54].settimeout(0.5)
        with pytest.raises(TimeoutError):
            receivers[54].recvfrom(16)
    finally:
        for receiver in receivers.values():
            receiver.close()


def test_open_mode_allows_loopback_but_never_the_daemons_own_ports(policies: list[NetworkPolicy],
                                                                   listeners: list[Listener]) -> None:
    listeners += [Listener("127.0.0.1"), Listener("127.0.0.1"), Listener("0.0.0.0")]
    service, api, debug = listeners
    policy = make(policies, "open", protected=[("127.0.0.1", api.port), ("0.0.0.0", debug.port)])
    uid = unique_uid()
    policy.admit(uid)
    result = probe(uid, [service.target, api.target, f"127.0.0.1:{debug.port}", f"127.0.0.3:{debug.port}"])
    assert result[service.target] == "connected"
    assert [result[t] for t in (api.target, f"127.0.0.1:{debug.port}", f"127.0.0.3:{debug.port}")].count(
        "connected") == 0, result
    assert api.accepted == 0 and debug.accepted == 0
    assert policy.level.startswith("network: plugins may connect anywhere but to the daemon's own ports")


def test_a_port_protected_later_is_refused_at_once(policies: list[NetworkPolicy], listeners: list[Listener]) -> None:
    listeners.append(Listener("127.0.0.1"))
    (debug,) = listeners
    policy = make(policies, "open")
    uid = unique_uid()
    policy.admit(uid)
    assert probe(uid, [debug.target])[debug.target] == "connected"
    policy.protect("127.0.0.1", debug.port, "the daemon's remote-debugging port")
    assert probe(uid, [debug.target])[debug.target] != "connected"
    assert f"never: 127.0.0.1:{debug.port}" in policy.level


def test_deny_private_puts_the_private_ranges_in_the_ruleset(policies: list[NetworkPolicy]) -> None:
    private = make(policies, "deny-private")
    local = make(policies, "deny-local")
    v4 = {f"{e['prefix']['addr']}/{e['prefix']['len']}" for e in set_elements(private, "private_v4")}
    v6 = {f"{e['prefix']['addr']}/{e['prefix']['len']}" for e in set_elements(private, "private_v6")}
    assert v4 == set(PRIVATE_V4) and v6 == set(PRIVATE_V6)

    def private_rules(policy: NetworkPolicy) -> int:
        rules = [item["rule"] for item in table_json(policy) if "rule" in item]
        return sum("@private_v" in json.dumps(rule["expr"]) and "reject" in json.dumps(rule["expr"])
                   for rule in rules)

    assert private_rules(private) == 4  # TCP reset and ICMP, IPv4 and IPv6
    assert private_rules(local) == 0
    assert "private addresses denied" in private.level


def test_the_daemons_own_endpoints_may_not_be_allow_listed() -> None:
    with pytest.raises(NetworkPolicyError, match=r"plugin_network_allow '127\.0\.0\.1:5002': 127\.0\.0\.1:5002 is "
                                                 r"the daemon's API, which plugins may never reach"):
        NetworkPolicy("t", "deny-local", ["127.0.0.1:5002"], [("127.0.0.1", 5002)],
                      protected_origins={("127.0.0.1", 5002): "the daemon's API"})
    # a listener on every address is protected on each of them, under any name
    with pytest.raises(NetworkPolicyError, match=r"'localhost:5003'.*may never reach"):
        NetworkPolicy("t", "open", ["localhost:5003"], [("0.0.0.0", 5003)])
    settings = Settings(db_url="postgresql://postgres@127.0.0.1:5432/plugdock", plugin_network_allow=["127.0.0.1:5432"])
    with pytest.raises(NetworkPolicyError, match=r"127\.0\.0\.1:5432 is the daemon's database \(DB_URL\)"):
        policy_for(settings, "t", environ={})
    NetworkPolicy("t", "deny-local", ["127.0.0.1:5004"], [("127.0.0.1", 5002)])  # a different port is fine


def test_settings_name_a_bad_mode_or_entry(tmp_path: Path) -> None:
    base = {"PLUGDOCK_HOME": str(tmp_path), "SERVER_KEY": "k"}
    with pytest.raises(PlugdockError, match=r"plugin_network must be one of deny-local, deny-private, open, not "
                                            r"'closed'"):
        load_settings(environ={**base, "PLUGDOCK_PLUGIN_NETWORK": "closed"})
    with pytest.raises(PlugdockError, match=r"plugin_network_allow entry 'localhost' needs a port"):
        load_settings(environ={**base, "PLUGDOCK_PLUGIN_NETWORK_ALLOW": "127.0.0.1:11434,localhost"})
    with pytest.raises(PlugdockError, match=r"'::1:80': write an IPv6 address as \[address\]:port"):
        load_settings(environ={**base, "PLUGDOCK_PLUGIN_NETWORK_ALLOW": "::1:80"})
    with pytest.raises(PlugdockError, match=r"'127\.0\.0\.1:99999': the port must be a number from 1 to 65535"):
        load_settings(environ={**base, "PLUGDOCK_PLUGIN_NETWORK_ALLOW": "127.0.0.1:99999"})
    settings = load_settings(environ={**base, "PLUGDOCK_PLUGIN_NETWORK_ALLOW": "127.0.0.1:11434, [::1]:8080"})
    assert settings.plugin_network == "deny-local" and settings.plugin_network_allow == ["127.0.0.1:11434",
                                                                                         "[::1]:8080"]


def test_loopback_services_the_daemon_hands_plugins_stay_reachable() -> None:
    settings = Settings(plugin_network_allow=[], uv_index_url="http://127.0.0.1:3141/simple",
                        inner_api_url="http://127.0.0.1:5001")
    policy = policy_for(settings, "t", environ={"HTTPS_PROXY": "http://127.0.0.1:3128", "OTHER_PROXY": "x:1"})
    assert [e.shown for e in policy.services] == ["127.0.0.1:3128", "127.0.0.1:5001"]  # proxy, host application
    assert [e.shown for e in policy.builder_allowed] == ["127.0.0.1:3141"]
    ruleset = policy.ruleset()
    assert "127.0.0.1 . 3128" in ruleset and "127.0.0.1 . 5001" in ruleset and "127.0.0.1 . 3141" in ruleset
    assert {e.shown for e in policy.protected} >= {"127.0.0.1:5002"}  # the API, by default settings


def test_install_is_idempotent_replaces_a_stale_table_and_remove_leaves_nothing(
        policies: list[NetworkPolicy]) -> None:
    tag = secrets.token_hex(6)
    stale = NetworkPolicy(tag, "deny-local", [], [])
    policies.append(stale)
    stale.install()
    stale.admit(unique_uid())  # a daemon killed with this uid admitted
    fresh = NetworkPolicy(tag, "deny-local", [], [])
    policies.append(fresh)
    fresh.install()
    fresh.install()
    assert tables().count(fresh.table) == 1
    assert set_elements(fresh, "uids") == []  # replaced, not merged
    uid = unique_uid()
    fresh.admit(uid)
    fresh.admit(uid)
    assert set_elements(fresh, "uids") == [uid]
    fresh.remove()
    fresh.remove()
    assert fresh.table not in tables()


def test_without_nft_the_level_says_nothing_is_restricted_and_admit_does_nothing() -> None:
    policy = NetworkPolicy(secrets.token_hex(6), "deny-local", [], [], nft="/nonexistent/nft")
    policy.install()
    assert not policy.installed
    assert policy.level.startswith("network: NOT restricted, plugins can reach every loopback service (nft could "
                                   "not run")
    policy.admit(unique_uid())
    policy.remove()
    assert policy.table not in tables()


# -- through a real daemon ---------------------------------------------------------------------------------

NET_PROBE = '''import json, socket, threading
from plugdock.sdk import Tool


class T(Tool):
    def _invoke(self, tool_parameters):
        results = {}

        def attempt(target):
            host, port = target.rsplit(":", 1)
            with socket.socket() as sock:
                sock.settimeout(3)
                try:
                    sock.connect((host, int(port)))
                    results[target] = "connected"
                except OSError as exc:
                    results[target] = type(exc).__name__

        threads = [threading.Thread(target=attempt, args=(t,)) for t in tool_parameters["targets"].split(",")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        yield self.create_json_message(results)
'''


@pytest.mark.slow
def test_a_plugin_reaches_its_allow_listed_service_but_not_the_daemon_or_postgresql(
        tmp_path: Path, listeners: list[Listener]) -> None:
    listeners += [Listener("127.0.0.1"), Listener("127.0.0.1")]
    allowed, other = listeners
    home = tmp_path / "home"
    daemon = DaemonProcess(home, PLUGDOCK_PLUGIN_NETWORK_ALLOW=allowed.target).start()
    table = f"plugdock_{home_tag(home)}"
    try:
        assert table in tables()
        root = make_plugin(tmp_path / "netprobe", name="netprobe")
        (root / "tools" / "netprobe.py").write_text(NET_PROBE)
        daemon.install(root)
        own = f"127.0.0.1:{daemon.port}"
        targets = [own, "127.0.0.1:5432", "127.0.0.1:6379", allowed.target, other.target]
        events = daemon.dispatch("tool/invoke", "tester/netprobe", {
            "provider": "netprobe", "tool": "netprobe", "credentials": {},
            "tool_parameters": {"targets": ",".join(targets)}})
        results = next(e["data"]["message"]["json_object"] for e in events
                       if e["code"] == 0 and e["data"].get("type") == "json")
        assert results[allowed.target] == "connected", results
        assert [results[t] for t in (own, "127.0.0.1:5432", "127.0.0.1:6379", other.target)].count("connected") == 0
        assert allowed.accepted == 1 and other.accepted == 0
    finally:
        daemon.stop()
    assert table not in tables()  # removed at shutdown
