"""Where plugin processes may connect: owner-matched nftables rules (``plugin_network``).

A plugin talks to the daemon over its pipes and needs no loopback for that, yet everything on loopback trusts
the machine: PostgreSQL with trust authentication, Redis without AUTH, the daemon's own API and debug ports.
As root the daemon runs every plugin (and every dependency build) as a uid of its own, so one table of rules
matched on the sending socket's owner closes those services to plugins and to nobody else:

- ``deny-local`` (default): loopback and every address of this host (``fib daddr type local``) are refused;
- ``deny-private``: the private ranges too (RFC 1918, link-local, CGNAT, IPv6 ULA and link-local);
- ``open``: only the daemon's own ports and database are refused.

The daemon's API, remote-debugging port and database are refused in every mode and may not be allow-listed.
Accepted before the refusals: the operator's allow-list (``plugin_network_allow``, e.g. Ollama on
127.0.0.1:11434), the resolvers of ``/etc/resolv.conf`` on port 53 (a loopback resolver such as
systemd-resolved's or Docker's would otherwise take DNS, and so the internet, away from plugins), the proxies
the daemon hands plugins (``HTTP(S)_PROXY``), the host application (``DIFY_INNER_API_URL``: the file URLs
plugins download and upload to point at it, and its inner API wants a key plugins do not have), and for the
dependency builder alone the package index (``uv_index_url``). Everything else, the internet included, is untouched.

Why rules rather than a network namespace per plugin: a namespace needs a veth pair, routing and NAT for each
plugin to keep internet egress, which is more moving parts on the host and breaks on hosts without bridge or
NAT support; owner rules cost one set lookup per packet. What they cannot see: Unix sockets (the sandbox's
mount namespace hides ``/run``, where PostgreSQL's and MariaDB's live on Debian) and abstract Unix sockets;
a plugin also cannot reach a helper it starts itself over loopback.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from plugdock.daemon.settings import NETWORK_MODES as MODES
from plugdock.daemon.settings import NetworkPolicyError, Settings, parse_host_port

__all__ = ["MODES", "NetworkPolicy", "NetworkPolicyError", "parse_host_port", "policy_for"]

PRIVATE_V4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10")
PRIVATE_V6 = ("fc00::/7", "fe80::/10")
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")  # the ones plugins are given
DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}
ANY_LOCAL = ""  # a listener bound to 0.0.0.0 or ::: every address of this host
NFT_TIMEOUT = 20


@dataclass(frozen=True)
class Endpoint:
    """One address and TCP/UDP port, and what named it (for errors and the banner)."""

    address: str  # an IP address, or ANY_LOCAL
    port: int
    origin: str

    @property
    def shown(self) -> str:
        if self.address == ANY_LOCAL:
            return f"*:{self.port}"
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


def addresses_of(host: str) -> list[str]:
    """IP addresses a host name stands for (an address is itself; 0.0.0.0, :: and "" mean every local one)."""
    if host in ("", "0.0.0.0", "::", "*"):
        return [ANY_LOCAL]
    with contextlib.suppress(ValueError):
        return [str(ipaddress.ip_address(host.split("%")[0]))]
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({str(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos})


def is_local_address(address: str) -> bool:
    """Whether ``address`` belongs to this host (loopback, or an interface's): only such addresses can be bound."""
    ip = ipaddress.ip_address(address)
    if ip.is_loopback:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


def nameservers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The resolvers plugins use; DNS to them stays open whatever the mode."""
    found = []
    with contextlib.suppress(OSError):
        for line in resolv_conf.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                with contextlib.suppress(ValueError):
                    found.append(str(ipaddress.ip_address(parts[1].split("%")[0])))
    return found


def url_endpoints(url: str, origin: str) -> list[Endpoint]:
    """Endpoints of an http(s) or socks URL (a proxy or a package index); none when it cannot be resolved."""
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        port = parts.port or {"https": 443, "socks5": 1080, "socks5h": 1080}.get(parts.scheme, 80)
        return [Endpoint(address, port, origin) for address in addresses_of(parts.hostname or "")
                if address != ANY_LOCAL]
    except (OSError, ValueError):
        return []


def protected_endpoints(settings: Settings, debug_port: int | None = None) -> list[Endpoint]:
    """The daemon's API, its remote-debugging port and its database: never reachable from a plugin."""
    found = [Endpoint(address, settings.port, "the daemon's API (SERVER_HOST/SERVER_PORT)")
             for address in addresses_of(settings.host)]
    port = debug_port or settings.remote_installing_port
    if settings.remote_installing_enabled and port:
        found += [Endpoint(address, port, "the daemon's remote-debugging port (PLUGIN_REMOTE_INSTALLING_PORT)")
                  for address in addresses_of(settings.remote_installing_host)]
    found += database_endpoints(settings.database_url)
    return found


def database_endpoints(database_url: str) -> list[Endpoint]:
    from sqlalchemy.engine import make_url

    try:
        url = make_url(database_url)
    except Exception:  # an unparsable URL fails when the daemon connects, with its own error
        return []
    backend = url.get_backend_name()
    port = url.port or DATABASE_PORTS.get(backend)
    if backend == "sqlite" or not url.host or port is None:
        return []  # a file, or a Unix socket (hidden by the sandbox's empty /run)
    try:
        return [Endpoint(address, port, "the daemon's database (DB_URL)") for address in addresses_of(url.host)]
    except OSError:
        return []


def policy_for(settings: Settings, tag: str, environ: Mapping[str, str] | None = None) -> NetworkPolicy:
    """The daemon's policy from its settings: its own endpoints protected; the proxies and host application it
    hands plugins, and its package index, let through."""
    env = os.environ if environ is None else environ
    services = [endpoint for name in PROXY_VARIABLES if env.get(name)
                for endpoint in url_endpoints(env[name], f"the proxy in {name}")]
    if settings.inner_api_url:
        services += url_endpoints(settings.inner_api_url, "the host application (DIFY_INNER_API_URL)")
    builder = url_endpoints(settings.uv_index_url, "the package index (UV_INDEX_URL)") if settings.uv_index_url else []
    protected = protected_endpoints(settings)
    return NetworkPolicy(tag, settings.plugin_network, settings.plugin_network_allow,
                         [(e.address, e.port) for e in protected], services=services, builder_allow=builder,
                         resolvers=nameservers(), protected_origins={(e.address, e.port): e.origin for e in protected})


class NetworkPolicy:
    """One daemon home's nftables table: which connections its plugin and builder uids may open."""

    def __init__(self, tag: str, mode: str, allow: list[str], protected: list[tuple[str, int]], *,
                 services: Iterable[Endpoint] = (), builder_allow: Iterable[Endpoint] = (),
                 resolvers: Iterable[str] = (), protected_origins: Mapping[tuple[str, int], str] | None = None,
                 nft: str | None = None) -> None:
        if mode not in MODES:
            raise NetworkPolicyError(f"plugin_network must be one of {', '.join(MODES)}, not {mode!r}")
        self.tag = tag
        self.mode = mode
        self.table = f"plugdock_{tag}"
        origins = protected_origins or {}
        self.protected: list[Endpoint] = []
        for host, port in protected:
            for address in addresses_of(host):
                self._add_protected(Endpoint(address, port, origins.get((host, port), "a port of the daemon")))
        self.allowed: list[Endpoint] = []
        for entry in allow:
            host, port = parse_host_port(entry, "plugin_network_allow")
            try:
                addresses = addresses_of(host)
            except OSError as exc:
                raise NetworkPolicyError(f"plugin_network_allow entry {entry!r}: cannot resolve {host!r} "
                                         f"({exc})") from None
            for address in addresses:
                self.allowed.append(self._not_protected(Endpoint(address, port, f"plugin_network_allow {entry!r}")))
        # what the daemon itself hands plugins; one that is also the daemon's own stays refused
        self.services = [e for e in services if not self._protects(e)]
        self.builder_allowed = [self._not_protected(e) for e in builder_allow]
        self.resolvers = list(dict.fromkeys(resolvers))
        self.nft = nft or shutil.which("nft") or next(
            (p for p in ("/usr/sbin/nft", "/sbin/nft") if os.access(p, os.X_OK)), None)
        self.installed = False
        self.level = "network: rules not installed yet"
        self._admitted: set[tuple[int, bool]] = set()
        self._lock = threading.Lock()

    # -- validation -------------------------------------------------------------------------------------
    def _add_protected(self, endpoint: Endpoint) -> bool:
        if any((e.address, e.port) == (endpoint.address, endpoint.port) for e in self.protected):
            return False
        self.protected.append(endpoint)
        return True

    def _protects(self, endpoint: Endpoint) -> Endpoint | None:
        for guarded in self.protected:
            if guarded.port != endpoint.port:
                continue
            if guarded.address == endpoint.address or (
                    guarded.address == ANY_LOCAL and is_local_address(endpoint.address)):
                return guarded
        return None

    def _not_protected(self, endpoint: Endpoint) -> Endpoint:
        guarded = self._protects(endpoint)
        if guarded is not None:
            raise NetworkPolicyError(
                f"{endpoint.origin}: {endpoint.shown} is {guarded.origin}, which plugins may never reach; "
                "remove it from the list")
        return endpoint

    # -- rules ------------------------------------------------------------------------------------------
    def ruleset(self) -> str:
        """The nft script that replaces this home's table in one transaction (a stale one included)."""

        def elements(items: Iterable[str]) -> str:
            listed = sorted(set(items))
            return f"elements = {{ {', '.join(listed)} }}" if listed else ""

        def pairs(endpoints: Iterable[Endpoint], version: int) -> str:
            return elements(f"{e.address} . {e.port}" for e in endpoints
                            if e.address != ANY_LOCAL and ipaddress.ip_address(e.address).version == version)

        allowed = [*self.allowed, *self.services]
        addresses = [e for e in self.protected if e.address != ANY_LOCAL]
        local_ports = elements(str(e.port) for e in self.protected if e.address == ANY_LOCAL)
        v4 = [a for a in self.resolvers if ipaddress.ip_address(a).version == 4]
        v6 = [a for a in self.resolvers if ipaddress.ip_address(a).version == 6]
        refuse = "meta l4proto tcp reject with tcp reset"
        lines = [
            f"table inet {self.table} {{}}",
            f"delete table inet {self.table}",
            f"table inet {self.table} {{",
            "  set uids { typeof meta skuid; }",
            "  set builders { typeof meta skuid; }",
            f"  set protected_v4 {{ type ipv4_addr . inet_service; {pairs(addresses, 4)} }}",
            f"  set protected_v6 {{ type ipv6_addr . inet_service; {pairs(addresses, 6)} }}",
            f"  set protected_local_ports {{ type inet_service; {local_ports} }}",
            f"  set allowed_v4 {{ type ipv4_addr . inet_service; {pairs(allowed, 4)} }}",
            f"  set allowed_v6 {{ type ipv6_addr . inet_service; {pairs(allowed, 6)} }}",
            f"  set builder_v4 {{ type ipv4_addr . inet_service; {pairs(self.builder_allowed, 4)} }}",
            f"  set builder_v6 {{ type ipv6_addr . inet_service; {pairs(self.builder_allowed, 6)} }}",
            f"  set resolvers_v4 {{ type ipv4_addr; {elements(v4)} }}",
            f"  set resolvers_v6 {{ type ipv6_addr; {elements(v6)} }}",
            f"  set private_v4 {{ type ipv4_addr; flags interval; {elements(PRIVATE_V4)} }}",
            f"  set private_v6 {{ type ipv6_addr; flags interval; {elements(PRIVATE_V6)} }}",
            # Packets with no socket owner (the kernel's resets, for one) must never meet the rules: a
            # "skuid != @uids return" would not match them and let them fall through to the refusals.
            "  chain output {",
            "    type filter hook output priority filter; policy accept;",
            "    meta skuid @uids jump plugin",
            "  }",
            "  chain plugin {",
            f"    ip daddr . tcp dport @protected_v4 {refuse}",
            f"    ip6 daddr . tcp dport @protected_v6 {refuse}",
            f"    fib daddr type local tcp dport @protected_local_ports {refuse}",
            "    meta skuid @builders meta l4proto { tcp, udp } ip daddr . th dport @builder_v4 accept",
            "    meta skuid @builders meta l4proto { tcp, udp } ip6 daddr . th dport @builder_v6 accept",
            "    meta l4proto { tcp, udp } ip daddr . th dport @allowed_v4 accept",
            "    meta l4proto { tcp, udp } ip6 daddr . th dport @allowed_v6 accept",
            # the destination before NAT: Docker's resolver 127.0.0.11:53 is redirected to another port
            "    meta l4proto { tcp, udp } ct original ip daddr @resolvers_v4 ct original proto-dst 53 accept",
            "    meta l4proto { tcp, udp } ct original ip6 daddr @resolvers_v6 ct original proto-dst 53 accept",
        ]
        if self.mode != "open":
            lines += [f"    fib daddr type local {refuse}",
                      "    fib daddr type local reject with icmpx type admin-prohibited"]
        if self.mode == "deny-private":
            lines += [f"    ip daddr @private_v4 {refuse}", "    ip daddr @private_v4 reject with icmpx type "
                      "admin-prohibited", f"    ip6 daddr @private_v6 {refuse}",
                      "    ip6 daddr @private_v6 reject with icmpx type admin-prohibited"]
        lines += ["  }", "}"]
        return "\n".join(lines) + "\n"

    def _run(self, script: str) -> None:
        if self.nft is None:
            raise NetworkPolicyError("nft is not installed (apt-get install nftables)")
        try:
            done = subprocess.run([self.nft, "-f", "-"], input=script, capture_output=True, text=True,
                                  timeout=NFT_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NetworkPolicyError(f"nft could not run: {exc}") from None
        if done.returncode != 0:
            detail = " ".join(line.strip() for line in done.stderr.splitlines() if line.strip())[:300]
            raise NetworkPolicyError(f"nft failed: {detail or f'exit code {done.returncode}'}")

    def install(self) -> None:
        """Replace this home's table; when nftables is missing or refuses, say so in ``level`` and go on."""
        with self._lock:
            self._admitted.clear()
            try:
                self._run(self.ruleset())
            except NetworkPolicyError as exc:
                self.installed = False
                self.level = (f"network: NOT restricted, plugins can reach every loopback service ({exc.message}; "
                              "plugin_network needs nftables and root)")
                return
            self.installed = True
            self.level = self._describe()

    def protect(self, host: str, port: int, origin: str) -> None:
        """Refuse one more endpoint of the daemon (the debug port, known only once it listens)."""
        new = [e for e in (Endpoint(a, port, origin) for a in addresses_of(host)) if self._add_protected(e)]
        if self.installed and new:
            script = []
            for e in new:
                if e.address == ANY_LOCAL:
                    script.append(f"add element inet {self.table} protected_local_ports {{ {e.port} }}")
                else:
                    family = "v6" if ipaddress.ip_address(e.address).version == 6 else "v4"
                    script.append(f"add element inet {self.table} protected_{family} {{ {e.address} . {e.port} }}")
            self._run("\n".join(script) + "\n")
            self.level = self._describe()

    def admit(self, uid: int, builder: bool = False) -> None:
        """Put a plugin's (or the builder's) uid under the rules before it runs; raises when that fails."""
        with self._lock:
            if not self.installed or (uid, builder) in self._admitted:
                return
            script = f"add element inet {self.table} uids {{ {uid} }}\n"
            if builder:
                script += f"add element inet {self.table} builders {{ {uid} }}\n"
            try:
                self._run(script)
            except NetworkPolicyError as exc:
                raise NetworkPolicyError(f"cannot put uid {uid} under the network rules: {exc.message}") from None
            self._admitted.add((uid, builder))

    def remove(self) -> None:
        """Delete the table (at shutdown: no plugin of this home runs any more)."""
        with self._lock:
            if self.installed:
                with contextlib.suppress(NetworkPolicyError):
                    self._run(f"table inet {self.table} {{}}\ndelete table inet {self.table}\n")
            self.installed = False
            self._admitted.clear()

    def _describe(self) -> str:
        denied = {"deny-local": "loopback and this host's addresses denied to plugins",
                  "deny-private": "loopback, this host's and private addresses denied to plugins",
                  "open": "plugins may connect anywhere but to the daemon's own ports and database"}[self.mode]
        parts = [f"network: {denied} (nftables table inet {self.table})"]
        if self.allowed:
            parts.append("allowed: " + ", ".join(dict.fromkeys(e.shown for e in self.allowed)))
        if self.services:
            parts.append("given to plugins: " + ", ".join(dict.fromkeys(f"{e.shown} ({e.origin})"
                                                                        for e in self.services)))
        if self.builder_allowed:
            parts.append("package index, for builds only: " + ", ".join(e.shown for e in self.builder_allowed))
        if self.resolvers:
            parts.append("DNS: " + ", ".join(self.resolvers))
        parts.append("never: " + ", ".join(dict.fromkeys(e.shown for e in self.protected)))
        return "; ".join(parts)
