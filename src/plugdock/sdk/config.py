"""``DifyPluginEnv``: the plugin's settings, from keyword arguments, then the environment, then ``.env``.

Same names and defaults as the official SDK; read without pydantic-settings so start-up stays light.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Any


class InstallMethod(Enum):
    Local = "local"
    Remote = "remote"
    Serverless = "serverless"


_DEFAULTS: dict[str, Any] = {
    "MAX_REQUEST_TIMEOUT": 300,
    "MAX_INVOCATION_TIMEOUT": 250,
    "MAX_WORKER": 1000,
    "HEARTBEAT_INTERVAL": 10.0,
    "INSTALL_METHOD": InstallMethod.Local,
    "REMOTE_INSTALL_URL": None,
    "REMOTE_INSTALL_HOST": "localhost",
    "REMOTE_INSTALL_PORT": 5003,
    "REMOTE_INSTALL_KEY": None,
    "SERVERLESS_HOST": "0.0.0.0",
    "SERVERLESS_PORT": 8080,
    "DIFY_PLUGIN_DAEMON_URL": "http://localhost:5002",
    "HTTPX_TIMEOUT": 5,
    "PLUGIN_RUNTIME_MAX_BUFFER_SIZE": 5 * 1024 * 1024,
    "PLUGDOCK_DEBUG": False,
}


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return values
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _coerce(name: str, value: Any) -> Any:
    default = _DEFAULTS[name]
    if isinstance(default, InstallMethod):
        try:
            return value if isinstance(value, InstallMethod) else InstallMethod(str(value).lower())
        except ValueError:
            raise ValueError(f"INSTALL_METHOD must be local, remote or serverless, not {value!r}") from None
    if isinstance(default, bool):
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an integer, not {value!r}") from None
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, not {value!r}") from None
    return None if value is None else str(value)


class DifyPluginEnv:
    """Plugin settings; ``DifyPluginEnv(MAX_REQUEST_TIMEOUT=120)`` overrides one, as with the official SDK."""

    MAX_REQUEST_TIMEOUT: int
    MAX_INVOCATION_TIMEOUT: int
    MAX_WORKER: int
    HEARTBEAT_INTERVAL: float
    INSTALL_METHOD: InstallMethod
    REMOTE_INSTALL_URL: str | None
    REMOTE_INSTALL_HOST: str
    REMOTE_INSTALL_PORT: int
    REMOTE_INSTALL_KEY: str | None
    SERVERLESS_HOST: str
    SERVERLESS_PORT: int
    DIFY_PLUGIN_DAEMON_URL: str
    HTTPX_TIMEOUT: int
    PLUGIN_RUNTIME_MAX_BUFFER_SIZE: int
    PLUGDOCK_DEBUG: bool

    def __init__(self, **overrides: Any) -> None:
        dotenv = _read_dotenv(Path.cwd() / ".env")
        for name in _DEFAULTS:
            if name in overrides:
                value = overrides.pop(name)
            elif name in os.environ:
                value = os.environ[name]
            elif name in dotenv:
                value = dotenv[name]
            else:
                value = _DEFAULTS[name]
            object.__setattr__(self, name, _coerce(name, value))
        for name, value in overrides.items():  # unknown settings are kept, as extra="ignore" would not fail
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("DifyPluginEnv is frozen; pass settings to the constructor")

    def __repr__(self) -> str:
        shown = {k: getattr(self, k) for k in _DEFAULTS if "KEY" not in k}
        return f"DifyPluginEnv({shown})"
