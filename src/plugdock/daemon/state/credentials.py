"""Provider credentials per tenant, encrypted at rest; used when the daemon dispatches reverse calls itself."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from plugdock.daemon.state.db import Database
from plugdock.daemon.state.models import CredentialRecord
from plugdock.daemon.state.secrets_box import SecretBox


class CredentialStore:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    def set(self, tenant: str, plugin_id: str, provider: str, kind: str, values: dict[str, Any]) -> None:
        with self.db.session() as s:
            s.merge(CredentialRecord(tenant_id=tenant, plugin_id=plugin_id, provider=provider, kind=kind,
                                     secret=self.box.seal(values)))

    def get(self, tenant: str, plugin_id: str, provider: str) -> dict[str, Any]:
        with self.db.session() as s:
            row = s.get(CredentialRecord, (tenant, plugin_id, provider))
            return dict(self.box.open(row.secret)) if row else {}

    def delete(self, tenant: str, plugin_id: str, provider: str) -> bool:
        with self.db.session() as s:
            row = s.get(CredentialRecord, (tenant, plugin_id, provider))
            if row is None:
                return False
            s.delete(row)
            return True

    def list(self, tenant: str) -> list[tuple[str, str, str, dict[str, Any]]]:
        with self.db.session() as s:
            rows = s.execute(select(CredentialRecord).where(CredentialRecord.tenant_id == tenant)).scalars().all()
            return [(r.plugin_id, r.provider, r.kind, dict(self.box.open(r.secret))) for r in rows]
