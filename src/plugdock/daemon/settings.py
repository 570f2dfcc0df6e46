"""Daemon settings: defaults, then a config file, then environment variables, then command-line flags.

The official daemon's variable names are accepted (``SERVER_PORT``, ``SERVER_KEY``, ``DB_URL``,
``FORCE_VERIFYING_SIGNATURE``...); ``plugdock serve --print-config`` shows each value and where it came
from, with secrets masked.
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plugdock.errors import PlugdockError

if TYPE_CHECKING:
    import socket

    from plugdock.packaging.signature import SignaturePolicy

NETWORK_MODES = ("deny-local", "deny-private", "open")
SECRET_FIELDS = {"server_key", "inner_api_key", "db_url"}
NOT_SETTINGS = {"sources", "remote_installing_socket"}
TRUE_WORDS = ("1", "t", "true", "yes", "on")  # Go's strconv.ParseBool, which the official daemon uses, and yes/on
FALSE_WORDS = ("0", "f", "false", "no", "off")


def default_home() -> Path:
    """``~/.plugdock``; as root, ``/var/lib/plugdock``: the sandbox runs plugins as other users, who
    cannot enter root's home (mode 700 on most systems)."""
    if os.geteuid() == 0:
        return Path("/var/lib/plugdock")
    return Path.home() / ".plugdock"


@dataclass
class Settings:
    home: Path = field(default_factory=default_home)
    host: str = "127.0.0.1"
    port: int = 5002
    server_key: str = ""
    db_url: str = ""
    force_verifying_signature: bool = True  # refuse uploads that do not verify (off: they install, unverified)
    third_party_signature_verification_enabled: bool = False  # trust third_party_signature_keys beside Dify's key
    third_party_signature_keys: list[str] = field(default_factory=list)
    enforce_langgenius_plugin_signatures: bool = True  # bundle members by langgenius must be signed by Dify
    max_package_size: int = 52428800
    max_execution_timeout: int = 600
    max_stdout_line: int = 5 * 1024 * 1024
    heartbeat_timeout: int = 120
    launch_timeout: int = 120
    body_timeout: int = 60  # seconds for a request body to arrive in full (slow uploads are cut)
    header_timeout: int = 10  # seconds for a request head to arrive (from connect, or from the last response)
    keep_alive_timeout: int = 5  # seconds an idle keep-alive connection stays open
    max_connections: int = 4096  # open HTTP connections; lowered at start to fit the open-file limit
    max_connections_per_peer: int = 1024  # from one client address (Dify's streams all come from one)
    start_plugins: str = "lazy"  # "lazy" or "boot"
    idle_stop_after: int = 0  # seconds; 0 keeps plugins running
    max_concurrent_launches: int = 4
    storage_max_size: int = 104857600
    storage_max_keys: int = 100_000  # keys per plugin and tenant
    pass_env: list[str] = field(default_factory=list)
    inner_api_url: str = ""
    inner_api_key: str = ""
    uv_index_url: str = ""
    allow_sdists: bool = False  # off: uv gets --only-binary :all:; on: sdists build as the unprivileged builder
    allow_direct_urls: bool = False  # `name @ https://…` / `git+…` lines in requirements.txt
    log_lines_kept: int = 1000
    access_log: bool = False  # one stderr line per request: method, path, status, duration (never bodies or keys)
    preinstall: list[str] = field(default_factory=list)
    max_backwards_depth: int = 8
    remote_installing_enabled: bool = True
    remote_installing_host: str = "127.0.0.1"
    remote_installing_port: int = 5003
    remote_installing_max_conn: int = 256
    remote_installing_max_per_tenant: int = 16
    remote_installing_timeout: int = 10
    remote_installing_max_handshake: int = 4096  # bytes in the handshake line, read before any key is checked
    marketplace_url: str = "https://marketplace.dify.ai"
    github_url: str = "https://github.com"
    endpoint_max_body: int = 10 * 1024 * 1024
    public_url: str = ""
    sandbox: str = "process"  # "none" or "process": see plugdock.daemon.plugins.sandbox
    sandbox_uid_base: int = 200000
    plugin_network: str = "deny-local"  # "deny-local", "deny-private" or "open": see plugdock.daemon.plugins.network
    plugin_network_allow: list[str] = field(default_factory=list)  # host:port plugins may reach anyway
    plugin_tmp_size: int = 256 * 1024 * 1024  # bytes of the private /tmp tmpfs (counts toward memory)
    # the least memory a plugin gets whatever its manifest says: the official daemon sets no limit on local
    # plugins, and official manifests carry template values (1 MiB or 256 MiB) that heavy SDKs exceed
    plugin_min_memory: int = 512 * 1024 * 1024
    plugin_cpu: float = 1.0  # cores per plugin (cgroup cpu quota); 0 = unlimited
    session_buffer: int = 16 * 1024 * 1024  # bytes of a plugin's output waiting for one caller
    session_stall_timeout: int = 30  # seconds a caller may read nothing while its buffer is full
    plugin_max_open_files: int = 1024
    plugin_max_processes: int = 2048  # threads count too: the official SDK's pool may hold 1000
    sources: dict[str, str] = field(default_factory=dict)
    # Not a setting: the remote-debugging socket `plugdock serve` binds before anything starts, so that a
    # taken port is one error line instead of a failed start-up.
    remote_installing_socket: socket.socket | None = field(default=None, repr=False, compare=False)

    def signature_policy(self) -> SignaturePolicy:
        """Which keys verify an upload and what must verify, from the official daemon's four settings."""
        from plugdock.packaging.signature import SignaturePolicy

        return SignaturePolicy.create(required=self.force_verifying_signature,
                                      third_party_enabled=self.third_party_signature_verification_enabled,
                                      third_party_keys=self.third_party_signature_keys,
                                      enforce_langgenius=self.enforce_langgenius_plugin_signatures)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home / 'plugdock.db'}"

    @property
    def database_shown(self) -> str:
        """The database URL with its password masked, for logs."""
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.database_url).render_as_string(hide_password=True)
        except Exception:  # an unparsable URL fails later with its own error; never echo it here
            return "(unparsable database URL)"

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, value, source) for ``--print-config``; secrets are masked."""
        out = []
        for f in fields(self):
            if f.name in NOT_SETTINGS:
                continue
            value = getattr(self, f.name)
            shown = "***" if f.name in SECRET_FIELDS and value else str(value)
            if f.name == "db_url" and value:
                shown = self.database_shown
            if f.name == "db_url" and not value:
                shown = f"(sqlite) {self.database_url}"
            out.append((f.name, shown, self.sources.get(f.name, "default")))
        return out


# Environment variables, official daemon names first, mapped to settings.
ENV_NAMES: dict[str, tuple[str, ...]] = {
    "home": ("PLUGDOCK_HOME",),
    "host": ("SERVER_HOST", "PLUGDOCK_HOST"),
    "port": ("SERVER_PORT", "PLUGDOCK_PORT"),
    "server_key": ("SERVER_KEY", "PLUGDOCK_SERVER_KEY"),
    "db_url": ("DB_URL", "PLUGDOCK_DB_URL"),
    "force_verifying_signature": ("FORCE_VERIFYING_SIGNATURE",),
    "third_party_signature_verification_enabled": ("THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED",),
    "third_party_signature_keys": ("THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS",),
    "enforce_langgenius_plugin_signatures": ("ENFORCE_LANGGENIUS_PLUGIN_SIGNATURES",),
    "max_package_size": ("MAX_PLUGIN_PACKAGE_SIZE",),
    "max_execution_timeout": ("PLUGIN_MAX_EXECUTION_TIMEOUT",),
    "max_stdout_line": ("PLUGIN_RUNTIME_MAX_BUFFER_SIZE",),
    "storage_max_size": ("PERSISTENCE_STORAGE_MAX_SIZE",),
    "storage_max_keys": ("PLUGDOCK_STORAGE_MAX_KEYS",),
    "inner_api_url": ("DIFY_INNER_API_URL",),
    "inner_api_key": ("DIFY_INNER_API_KEY",),
    "start_plugins": ("PLUGDOCK_START_PLUGINS",),
    "idle_stop_after": ("PLUGDOCK_IDLE_STOP_AFTER",),
    "max_concurrent_launches": ("PLUGDOCK_MAX_CONCURRENT_LAUNCHES",),
    "heartbeat_timeout": ("PLUGDOCK_HEARTBEAT_TIMEOUT",),
    "max_backwards_depth": ("PLUGDOCK_MAX_BACKWARDS_DEPTH",),
    "public_url": ("PLUGDOCK_PUBLIC_URL",),
    "remote_installing_enabled": ("PLUGIN_REMOTE_INSTALLING_ENABLED",),
    "remote_installing_host": ("PLUGIN_REMOTE_INSTALLING_HOST",),
    "remote_installing_port": ("PLUGIN_REMOTE_INSTALLING_PORT",),
    "remote_installing_max_conn": ("PLUGIN_REMOTE_INSTALLING_MAX_CONN",),
    "remote_installing_timeout": ("PLUGDOCK_REMOTE_INSTALLING_TIMEOUT",),
    "remote_installing_max_handshake": ("PLUGDOCK_REMOTE_INSTALLING_MAX_HANDSHAKE",),
    "marketplace_url": ("MARKETPLACE_API_URL", "PLUGDOCK_MARKETPLACE_URL"),
    "github_url": ("PLUGDOCK_GITHUB_URL",),
    "launch_timeout": ("PLUGDOCK_LAUNCH_TIMEOUT",),
    "body_timeout": ("PLUGDOCK_BODY_TIMEOUT",),
    "header_timeout": ("PLUGDOCK_HEADER_TIMEOUT",),
    "keep_alive_timeout": ("PLUGDOCK_KEEP_ALIVE_TIMEOUT",),
    "max_connections": ("PLUGDOCK_MAX_CONNECTIONS",),
    "max_connections_per_peer": ("PLUGDOCK_MAX_CONNECTIONS_PER_PEER",),
    "pass_env": ("PLUGDOCK_PASS_ENV",),
    "uv_index_url": ("UV_INDEX_URL", "PIP_INDEX_URL"),
    "allow_sdists": ("PLUGDOCK_ALLOW_SDISTS",),
    "allow_direct_urls": ("PLUGDOCK_ALLOW_DIRECT_URLS",),
    "sandbox": ("PLUGDOCK_SANDBOX",),
    "sandbox_uid_base": ("PLUGDOCK_SANDBOX_UID_BASE",),
    "plugin_network": ("PLUGDOCK_PLUGIN_NETWORK",),
    "plugin_network_allow": ("PLUGDOCK_PLUGIN_NETWORK_ALLOW",),
    "plugin_tmp_size": ("PLUGDOCK_PLUGIN_TMP_SIZE",),
    "plugin_min_memory": ("PLUGDOCK_PLUGIN_MIN_MEMORY",),
    "plugin_cpu": ("PLUGDOCK_PLUGIN_CPU",),
    "session_buffer": ("PLUGDOCK_SESSION_BUFFER",),
    "session_stall_timeout": ("PLUGDOCK_SESSION_STALL_TIMEOUT",),
    "plugin_max_open_files": ("PLUGDOCK_PLUGIN_MAX_OPEN_FILES",),
    "plugin_max_processes": ("PLUGDOCK_PLUGIN_MAX_PROCESSES",),
    "access_log": ("PLUGDOCK_ACCESS_LOG",),
}


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if kind == "Path":
            return Path(str(value)).expanduser()
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in TRUE_WORDS + FALSE_WORDS:  # a typo must not turn FORCE_VERIFYING_SIGNATURE off
                raise ValueError(value)
            return text in TRUE_WORDS
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "list[str]":
            if isinstance(value, list):
                return [str(v) for v in value]
            return [part.strip() for part in str(value).split(",") if part.strip()]
        return str(value)
    except (TypeError, ValueError):
        raise PlugdockError(f"setting {name}: {value!r} is not a valid {kind}") from None


def load_settings(config_file: Path | None = None, flags: dict[str, Any] | None = None,
                  environ: dict[str, str] | None = None) -> Settings:
    settings = Settings()
    settings.sources = {}
    env = os.environ if environ is None else environ
    config_file = config_file or (Path(env["PLUGDOCK_CONFIG"]) if env.get("PLUGDOCK_CONFIG") else None)
    if config_file is not None:
        try:
            raw = config_file.read_text(encoding="utf-8")
            data = json.loads(raw) if config_file.suffix == ".json" else tomllib.loads(raw)
        except (OSError, ValueError) as exc:
            raise PlugdockError(f"config file {config_file}: {exc}") from exc
        known = {f.name for f in fields(Settings)} - NOT_SETTINGS
        for key, value in data.items():
            name = key.lower().replace("-", "_")
            if name not in known:
                raise PlugdockError(f"config file {config_file}: unknown setting {key!r}")
            setattr(settings, name, _coerce(name, value))
            settings.sources[name] = f"config file {config_file}"
    for name, env_names in ENV_NAMES.items():
        for env_name in env_names:
            if env.get(env_name):
                setattr(settings, name, _coerce(name, env[env_name]))
                settings.sources[name] = f"env {env_name}"
                break
    for name, value in (flags or {}).items():
        if value is not None:
            setattr(settings, name, _coerce(name, value))
            settings.sources[name] = "flag"
    if not settings.server_key:
        key_file = settings.home / "server.key"
        if key_file.exists():
            settings.server_key = key_file.read_text().strip()
            settings.sources["server_key"] = f"generated earlier ({key_file})"
        else:
            settings.home.mkdir(parents=True, exist_ok=True)
            settings.server_key = secrets.token_urlsafe(32)
            key_file.write_text(settings.server_key)
            key_file.chmod(0o600)
            settings.sources["server_key"] = f"generated ({key_file})"
    if settings.sandbox not in ("none", "process"):
        raise PlugdockError(f"sandbox must be 'none' or 'process', not {settings.sandbox!r}")
    if settings.plugin_network not in NETWORK_MODES:
        raise NetworkPolicyError(f"plugin_network must be one of {', '.join(NETWORK_MODES)}, "
                                 f"not {settings.plugin_network!r}")
    for entry in settings.plugin_network_allow:
        parse_host_port(entry, "plugin_network_allow")
    if settings.start_plugins not in ("lazy", "boot"):
        raise PlugdockError(f"start_plugins must be 'lazy' or 'boot', not {settings.start_plugins!r}")
    _check_signature_keys(settings)
    return settings


def _check_signature_keys(settings: Settings) -> None:
    """A trusted key file that cannot be read stops the start, naming it: the official daemon then fails
    every signature silently, refusing even Marketplace packages."""
    if not settings.third_party_signature_verification_enabled:
        return
    from plugdock.errors import KeyFileError
    from plugdock.packaging.signature import load_public_key

    where = settings.sources.get("third_party_signature_keys", "THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS")
    for path in settings.third_party_signature_keys:
        try:
            load_public_key(path.strip())
        except KeyFileError as exc:
            raise KeyFileError(f"third_party_signature_keys ({where}): {exc.message}") from None


class NetworkPolicyError(PlugdockError):
    code = "network_policy_error"


def parse_host_port(text: str, what: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` → (host, port), with an error naming ``what`` and the entry."""
    entry = text.strip()
    if entry.startswith("["):
        host, sep, rest = entry[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise NetworkPolicyError(f"{what} entry {text!r}: write an IPv6 address as [address]:port")
        port_text = rest[1:]
    else:
        host, sep, port_text = entry.rpartition(":")
        if not sep or not host:
            raise NetworkPolicyError(f"{what} entry {text!r} needs a port: host:port, e.g. 127.0.0.1:11434")
        if ":" in host:
            raise NetworkPolicyError(f"{what} entry {text!r}: write an IPv6 address as [address]:port")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise NetworkPolicyError(f"{what} entry {text!r}: the port must be a number from 1 to 65535")
    if host in ("0.0.0.0", "::", "*"):
        raise NetworkPolicyError(f"{what} entry {text!r}: name the address plugins connect to (e.g. 127.0.0.1)")
    return host, int(port_text)
