"""How every command that talks to a daemon names it and its key, and turns each failure into one line.

One set of options for all of them: ``--daemon URL`` (or ``PLUGDOCK_DAEMON_URL``), the server key from
``--key-file PATH`` or ``PLUGDOCK_KEY`` (never the command line), ``--tenant``. On the daemon's own host
the key file ``plugdock serve`` writes (``PLUGDOCK_HOME/server.key``) is found without being named.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from plugdock.cli.secrets_input import Secret, read_secret_file, resolve_secret, warn_password_in_url
from plugdock.errors import PlugdockError

DEFAULT_DAEMON = "http://127.0.0.1:5002"
# PLUGDOCK_KEY is the documented name; PLUGDOCK_SERVER_KEY, the daemon's own alias of SERVER_KEY, also works
# (one export then serves `plugdock serve` and the commands beside it) but is not offered in messages.
SERVER_KEY_ENV = ("PLUGDOCK_KEY", "PLUGDOCK_SERVER_KEY")
F = TypeVar("F", bound=Callable[..., Any])


def daemon_options(command: F) -> F:
    """``--daemon``, ``--key-file``, the deprecated ``--key`` and ``--tenant``, the same on every command."""
    options = [
        click.option("--daemon", "daemon_url", envvar="PLUGDOCK_DAEMON_URL", default=DEFAULT_DAEMON,
                     show_default=True, help="The daemon's URL (or set PLUGDOCK_DAEMON_URL)."),
        click.option("--key-file", type=click.Path(readable=False, path_type=Path),
                     help="File holding the daemon's server key (or set PLUGDOCK_KEY); default: "
                          "PLUGDOCK_HOME/server.key, which plugdock serve writes, when it exists."),
        click.option("--key", help="Deprecated: the server key itself, which every local process can read in "
                                   "/proc/<pid>/cmdline; use --key-file or PLUGDOCK_KEY."),
        click.option("--tenant", default="default", show_default=True, help="The tenant (workspace) id."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def server_key(key_file: Path | None, key: str | None) -> Secret:
    """--key-file, PLUGDOCK_KEY (or PLUGDOCK_SERVER_KEY), else the local daemon's own key file."""
    if key_file is None and key is None and not any(name in os.environ for name in SERVER_KEY_ENV):
        local = local_key_file()
        if local is not None:
            return Secret(read_secret_file(local), str(local))
    given = tuple(name for name in SERVER_KEY_ENV if name in os.environ) or SERVER_KEY_ENV[:1]
    return resolve_secret(file_path=key_file, value=key, env_names=given, what="server key",
                          hint=" (plugdock serve writes the key it generates to PLUGDOCK_HOME/server.key)")


def local_key_file() -> Path | None:
    """The key file of a daemon on this host with the default or PLUGDOCK_HOME home, when it is readable."""
    from plugdock.daemon.settings import default_home

    home = Path(os.environ["PLUGDOCK_HOME"]).expanduser() if os.environ.get("PLUGDOCK_HOME") else default_home()
    path = home / "server.key"
    return path if path.is_file() and os.access(path, os.R_OK) else None


class DaemonClient:
    """The daemon's management API: every failure (unreachable, key refused, error envelope) is one line."""

    def __init__(self, url: str, key: Secret, tenant: str = "default") -> None:
        import httpx

        if not url.startswith(("http://", "https://")):
            raise PlugdockError(f"daemon URL {url!r} must start with http:// or https:// "
                                "(--daemon or PLUGDOCK_DAEMON_URL)")
        self.url = url.rstrip("/")
        self.key = key
        self.tenant = tenant
        # Installs may take minutes; a daemon that does not even accept the connection is named quickly.
        try:
            self._http = httpx.Client(base_url=self.url, headers={"X-Api-Key": key.value},
                                      timeout=httpx.Timeout(600, connect=15))
        except (httpx.InvalidURL, ValueError) as exc:
            raise PlugdockError(f"daemon URL {url!r} is not a URL: {exc} (--daemon or PLUGDOCK_DAEMON_URL)") from None

    def __enter__(self) -> DaemonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One management call; ``{tenant}`` in ``path`` is this client's tenant."""
        import httpx

        try:
            response = self._http.request(method, path.format(tenant=self.tenant), **kwargs)
        except httpx.TimeoutException:
            raise PlugdockError(f"the daemon at {self.url} did not answer in time: check that it is up and not "
                                "overloaded (plugdock serve's log)") from None
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise PlugdockError(f"cannot reach the daemon at {self.url}: {_reason(exc)}; is `plugdock serve` "
                                "running there? Name another with --daemon or PLUGDOCK_DAEMON_URL") from None
        if response.status_code == 401:
            raise PlugdockError(f"the daemon at {self.url} refused the server key from {self.key.source} "
                                "(HTTP 401): it must match the daemon's SERVER_KEY or HOME/server.key")
        return _data(self.url, response)


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    if "name or service not known" in text.lower() or "nodename nor servname" in text.lower():
        return "unknown host name"
    return text.splitlines()[0][:200]


def _data(url: str, response: Any) -> Any:
    try:
        body = response.json()
    except ValueError:
        raise PlugdockError(f"no plugdock daemon answers at {url}: HTTP {response.status_code}, "
                            f"{response.text[:120]!r}") from None
    if not isinstance(body, dict) or "code" not in body:
        raise PlugdockError(f"no plugdock daemon answers at {url}: HTTP {response.status_code} with an "
                            "unexpected body")
    if body.get("code") != 0:
        message = body.get("message", "")
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            message = json.loads(message).get("message", message)
        raise PlugdockError(f"daemon refused: {message}")
    return body.get("data")


def connect(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the :func:`daemon_options` values into one ``daemon`` argument: a :class:`DaemonClient`."""

    @functools.wraps(command)
    def wrapper(*args: Any, daemon_url: str, key_file: Path | None, key: str | None, tenant: str,
                **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        if ctx.get_parameter_source("daemon_url") == click.core.ParameterSource.COMMANDLINE:
            warn_password_in_url("--daemon", daemon_url, "set PLUGDOCK_DAEMON_URL")
        with DaemonClient(daemon_url, server_key(key_file, key), tenant) as daemon:
            return command(*args, daemon=daemon, **kwargs)

    return daemon_options(wrapper)


def debug_address(daemon: DaemonClient) -> tuple[str, str]:
    """A debug key for the client's tenant and the HOST:PORT a plugin connects to with it."""
    from urllib.parse import urlsplit

    data = daemon.call("POST", "/plugin/{tenant}/debugging/key")
    host = str(data.get("host") or "")
    if host in ("", "0.0.0.0", "::"):  # listening everywhere: the daemon's own host name reaches it
        host = urlsplit(daemon.url).hostname or "127.0.0.1"
    return f"{host}:{data['port']}", str(data["key"])


def debug_target(daemon_url: str, url: str | None, key_file: Path | None, key: str | None,
                 tenant: str) -> tuple[str, str]:
    """Where ``plugdock debug`` connects and with which debug key.

    With ``--daemon`` (the default) the daemon is asked for both, with its server key; the deprecated
    ``--url HOST:PORT`` takes a debug key from --key-file, PLUGDOCK_DEBUG_KEY or REMOTE_INSTALL_KEY."""
    from plugdock.cli.secrets_input import warn

    if url is not None:
        warn("--url is deprecated: give the daemon's URL with --daemon (or PLUGDOCK_DAEMON_URL) and its server "
             "key, and plugdock debug fetches a debug key itself")
        secret = resolve_secret(file_path=key_file, value=key, env_names=("PLUGDOCK_DEBUG_KEY", "REMOTE_INSTALL_KEY"),
                                what="debug key")
        return url, secret.value
    if click.get_current_context().get_parameter_source("daemon_url") == click.core.ParameterSource.COMMANDLINE:
        warn_password_in_url("--daemon", daemon_url, "set PLUGDOCK_DAEMON_URL")
    with DaemonClient(daemon_url, server_key(key_file, key), tenant) as daemon:
        return debug_address(daemon)
