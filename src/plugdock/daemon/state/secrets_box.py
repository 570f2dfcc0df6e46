"""Encryption at rest for credentials and endpoint settings (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes from ``PLUGDOCK_SECRET_KEY`` (a Fernet key) or is generated once into ``home/secret.key``
(mode 600). Losing the key loses the stored secrets, never the rest of the database.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from plugdock.errors import PlugdockError


class SecretBox:
    def __init__(self, home: Path, key: str | None = None) -> None:
        key = key or os.environ.get("PLUGDOCK_SECRET_KEY")
        if not key:
            path = home / "secret.key"
            if path.exists():
                key = path.read_text().strip()
            else:
                key = Fernet.generate_key().decode()
                home.mkdir(parents=True, exist_ok=True)
                path.write_text(key)
                path.chmod(0o600)
        try:
            self._fernet = Fernet(key.encode())
        except ValueError as exc:
            raise PlugdockError("PLUGDOCK_SECRET_KEY is not a valid Fernet key (32 url-safe base64 bytes)") from exc

    def seal(self, value: Any) -> bytes:
        return self._fernet.encrypt(json.dumps(value).encode())

    def open(self, token: bytes) -> Any:
        try:
            return json.loads(self._fernet.decrypt(bytes(token)))
        except InvalidToken:
            raise PlugdockError("stored secrets cannot be decrypted: the secret key changed") from None


def secret_fields(declaration: dict[str, Any], kind: str) -> set[str]:
    """Names of credential fields a provider declares as ``secret-input`` (masked in every listing)."""
    if kind == "tool":
        fields = (declaration.get("tool") or {}).get("credentials_schema") or []
        return {str(f.get("name")) for f in fields if isinstance(f, dict) and f.get("type") == "secret-input"}
    model = declaration.get("model") or {}
    forms = [*((model.get("provider_credential_schema") or {}).get("credential_form_schemas") or []),
             *((model.get("model_credential_schema") or {}).get("credential_form_schemas") or [])]
    return {str(f.get("variable")) for f in forms if isinstance(f, dict) and f.get("type") == "secret-input"}


def mask(values: dict[str, Any], secrets: set[str]) -> dict[str, Any]:
    return {k: ("[__HIDDEN__]" if k in secrets and v else v) for k, v in values.items()}
