"""Issue 17 item 13: each dispatch route in the OpenAPI document with its own request body, and those bodies
checked field by field against the official SDK's request models (``dify_plugin.core.entities.plugin.request``
from PyPI), so the document says what a plugin really receives."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from plugdock.daemon.http.app import create_app
from plugdock.daemon.invocation.dispatch_routes import DISPATCH_ROUTES
from plugdock.daemon.settings import Settings
from plugdock.protocol.actions import ACCESS_ACTIONS
from plugdock.protocol.requests import ACTION_DATA

# The fields every official request carries beside the data: the daemon adds them from the envelope.
ENVELOPE_FIELDS = {"type", "action", "user_id"}

OFFICIAL_FIELDS = r"""
import json, typing
from pydantic import BaseModel
from dify_plugin.core.entities.plugin import request

found = {}
for value in vars(request).values():
    if not (isinstance(value, type) and issubclass(value, BaseModel)) or "action" not in value.model_fields:
        continue
    action = value.model_fields["action"].default
    if action is None:
        continue
    found[str(action.value)] = {name: field.is_required() for name, field in value.model_fields.items()}
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("openapi") / "home"
    app = create_app(Settings(home=home, server_key="k", sandbox="none", remote_installing_enabled=False))
    return app.openapi()


def _resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/components/schemas/"), ref
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_every_dispatch_route_has_its_own_body(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert "/plugin/{tenant_id}/dispatch/{route}" not in paths
    for route, (_access, action) in DISPATCH_ROUTES.items():
        operation = paths[f"/plugin/{{tenant_id}}/dispatch/{route}"]["post"]
        assert {p["name"] for p in operation["parameters"]} == {"tenant_id", "X-Plugin-ID"}
        body = _resolve(document, operation["requestBody"]["content"]["application/json"]["schema"]["$ref"])
        data = _resolve(document, body["properties"]["data"]["$ref"])
        assert set(data["properties"]) == set(ACTION_DATA[action].model_fields), route
        assert "text/event-stream" in operation["responses"]["200"]["content"]
    ids = Counter(op["operationId"] for item in paths.values() for op in item.values())
    assert max(ids.values()) == 1


def test_every_reference_in_the_document_resolves(document: dict[str, Any]) -> None:
    refs = {ref for ref in _refs(document)}
    assert refs
    for ref in refs:
        _resolve(document, ref)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_every_action_but_the_endpoints_has_a_model() -> None:
    actions = {a for actions in ACCESS_ACTIONS.values() for a in actions} - {"invoke_endpoint"}
    assert set(ACTION_DATA) == actions
    assert {action for _access, action in DISPATCH_ROUTES.values()} == actions


def test_the_models_match_the_official_sdk_field_by_field(official_python: str, tmp_path: Path) -> None:
    script = tmp_path / "fields.py"
    script.write_text(OFFICIAL_FIELDS)
    run = subprocess.run([official_python, str(script)], capture_output=True, text=True, timeout=120, check=True)
    official: dict[str, dict[str, bool]] = json.loads(run.stdout)
    assert set(official) - {"invoke_endpoint"} == set(ACTION_DATA)
    for action, model in ACTION_DATA.items():
        theirs = {name: required for name, required in official[action].items() if name not in ENVELOPE_FIELDS}
        ours = {name: field.is_required() for name, field in model.model_fields.items()}
        assert ours == theirs, action
