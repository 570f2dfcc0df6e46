"""Endpoint settings at rest: sealed by the host application when there is one, as the official daemon does.

Under a host (``DIFY_INNER_API_URL``), settings are encrypted and decrypted through its ``invoke/encrypt``
(official ``internal/service/setup_endpoint.go`` and ``endpoint.go``; Dify's ``PluginEncrypter``): the body is
``{tenant_id, user_id, type: "encrypt", opt: encrypt|decrypt|clear, namespace: "endpoint", identity: <endpoint
id>, data, config: <the endpoint's settings declaration>}`` and the answer ``{"data": {"data": {...}},
"error": ""}``. Dify encrypts only the ``secret-input`` fields, so the host is asked only when the
declaration has one (the official ``EncryptRequired``); otherwise the settings are stored as they are. The
stored value is then the settings' JSON as Dify encrypted them: readable by Dify and by an official daemon
the database is migrated to. With no host, the daemon's own Fernet box seals them (``state/secrets_box``).

The column tells the two apart: a Fernet token never starts with ``{``. Settings sealed by the box before a
host was configured still open; they are sealed by the host the next time they are updated.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select

from plugdock.daemon.invocation.inner_api import HostError, InnerApi
from plugdock.daemon.state.models import EndpointRecord, PluginRecord, new_id

if TYPE_CHECKING:
    from plugdock.daemon.settings import Settings
    from plugdock.daemon.state.db import Database
    from plugdock.daemon.state.secrets_box import SecretBox

HIDDEN = "[__HIDDEN__]"


class _Holder(Protocol):
    settings: Settings
    box: SecretBox
    db: Database


def official_mask(value: str) -> str:
    """The official daemon's mask of a secret (``pkg/utils/encryption/mask.go``)."""
    return value[:2] + "*" * (len(value) - 4) + value[-2:] if len(value) > 6 else "*" * len(value)


class EndpointSettings:
    def __init__(self, settings: Settings, box: SecretBox, db: Database) -> None:
        self.box = box
        self.db = db
        self.host = InnerApi(settings)

    @classmethod
    def of(cls, d: _Holder) -> EndpointSettings:
        return cls(d.settings, d.box, d.db)

    def config(self, unique_identifier: str) -> list[dict[str, Any]]:
        """The endpoint settings the plugin declares (``endpoint.settings`` of its declaration)."""
        with self.db.session() as s:
            declaration = s.execute(select(PluginRecord.declaration).where(
                PluginRecord.unique_identifier == unique_identifier)).scalar_one_or_none()
        fields = ((declaration or {}).get("endpoint") or {}).get("settings") or []
        return [f for f in fields if isinstance(f, dict)]

    async def _encrypt(self, opt: str, tenant_id: str, user_id: str, endpoint_id: str, data: dict[str, Any],
                       config: list[dict[str, Any]]) -> dict[str, Any]:
        if not any(f.get("type") == "secret-input" for f in config):  # the official EncryptRequired
            return data
        answer = await self.host.call("invoke/encrypt", {
            "tenant_id": tenant_id, "user_id": user_id, "type": "encrypt", "opt": opt, "namespace": "endpoint",
            "identity": endpoint_id, "data": data, "config": config})
        result = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(result, dict):
            raise HostError(f"the host application's invoke/encrypt ({opt}) answered {answer!r}, not "
                            "{\"data\": {...}}")
        return result

    async def _seal(self, tenant_id: str, user_id: str, endpoint_id: str, values: dict[str, Any],
                    config: list[dict[str, Any]]) -> bytes:
        if not self.host.configured:
            return self.box.seal(values)
        encrypted = await self._encrypt("encrypt", tenant_id, user_id, endpoint_id, values, config)
        return json.dumps(encrypted).encode()

    async def seal_new(self, tenant_id: str, user_id: str, unique_identifier: str,
                       values: dict[str, Any]) -> tuple[str, bytes]:
        """(the new endpoint's id, its sealed settings): the host encrypts under the endpoint's id."""
        endpoint_id = new_id()
        return endpoint_id, await self._seal(tenant_id, user_id, endpoint_id, values,
                                             self.config(unique_identifier))

    def stored(self, sealed: bytes) -> dict[str, Any]:
        """The settings as stored, for listings that mask every secret: plaintext from the box, or as the
        host encrypted them (secret fields are ciphertext, the rest plaintext) with no call to the host."""
        raw = bytes(sealed)
        if raw.startswith(b"{"):
            value = json.loads(raw)
            return value if isinstance(value, dict) else {}
        opened = self.box.open(raw)
        return opened if isinstance(opened, dict) else {}

    async def open(self, row: EndpointRecord) -> dict[str, Any]:
        """The plaintext settings, as the plugin receives them."""
        raw = bytes(row.settings)
        if not raw.startswith(b"{"):
            return self.stored(raw)
        config = self.config(row.unique_identifier)
        if not any(f.get("type") == "secret-input" for f in config):
            return self.stored(raw)  # nothing in it was encrypted (the official EncryptRequired): no host needed
        if not self.host.configured:
            raise HostError(f"the settings of endpoint {row.id} were encrypted by the host application; configure "
                            "DIFY_INNER_API_URL and DIFY_INNER_API_KEY to use them")
        return await self._encrypt("decrypt", row.tenant_id, "", row.id, self.stored(raw), config)

    async def update(self, row: EndpointRecord, user_id: str, values: dict[str, Any]) -> bytes:
        """New sealed settings: secrets sent back masked keep their stored value (as the official
        ``UpdateEndpoint`` does); under a host its cache of this endpoint's settings is cleared after."""
        current = await self.open(row)
        config = self.config(row.unique_identifier)
        secrets = {f.get("name") for f in config if f.get("type") == "secret-input"}
        # a listing masks the stored value, which under a host is the ciphertext: either mask sent back keeps it
        shown = self.stored(row.settings)
        masks = {k: {HIDDEN, official_mask(v), official_mask(str(shown.get(k, "")))} for k, v in current.items()
                 if k in secrets and isinstance(v, str)}
        merged = {k: (current[k] if isinstance(v, str) and v in masks.get(k, ()) else v) for k, v in values.items()}
        sealed = await self._seal(row.tenant_id, user_id, row.id, merged, config)
        if self.host.configured:
            await self._encrypt("clear", row.tenant_id, user_id, row.id, merged, config)
        return sealed
