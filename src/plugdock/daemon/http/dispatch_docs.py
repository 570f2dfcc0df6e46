"""Each dispatch route in the OpenAPI document with its own request body.

One handler serves every ``/plugin/{tenant}/dispatch/<route>`` (and the fast path answers most of them before
routing), so FastAPI alone would document a single ``/dispatch/{route}`` taking any ``data``. This replaces
that entry with one operation per route of :data:`DISPATCH_ROUTES`, whose ``data`` is the action's model from
:mod:`plugdock.protocol.requests`: what the host must send, field by field. Documentation only: the daemon
still hands the plugin whatever ``data`` came, since the plugin is the one that validates it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, create_model
from pydantic.json_schema import models_json_schema

from plugdock.daemon.http.bodies import DispatchBody
from plugdock.daemon.invocation.dispatch_routes import DISPATCH_ROUTES
from plugdock.protocol.requests import ACTION_DATA

GENERIC_PATH = "/plugin/{tenant_id}/dispatch/{route}"
STREAM = ("An event stream: one `data: {\"code\": 0, \"message\": \"\", \"data\": <chunk>}` line per chunk the "
          "plugin sends, or one with a non-zero code and the error.")


def _title(route: str) -> str:
    return "".join(part.capitalize() for part in route.replace("/", "_").split("_")) + "Dispatch"


def body_models() -> dict[str, type[BaseModel]]:
    """Per route, the dispatch body with ``data`` typed as that route's action."""
    return {route: create_model(_title(route), __base__=DispatchBody, data=(ACTION_DATA[action], ...))
            for route, (_access, action) in DISPATCH_ROUTES.items()}


def document_dispatch_routes(schema: dict[str, Any]) -> None:
    """Swap the generic dispatch entry of ``schema`` (FastAPI's document, changed in place) for one per route."""
    generic = schema.get("paths", {}).pop(GENERIC_PATH, None)
    if generic is None:
        return
    template = generic["post"]
    models = body_models()
    _, definitions = models_json_schema([(m, "validation") for m in models.values()],
                                        ref_template="#/components/schemas/{model}")
    schema.setdefault("components", {}).setdefault("schemas", {}).update(definitions.get("$defs", {}))
    tenant = next(p for p in template["parameters"] if p["name"] == "tenant_id")
    plugin = {"name": "X-Plugin-ID", "in": "header", "required": True,
              "description": "The plugin's id (author/name), installed for the tenant; the daemon picks the version",
              "schema": {"type": "string"}}
    for route, model in models.items():
        access, action = DISPATCH_ROUTES[route]
        schema["paths"][f"/plugin/{{tenant_id}}/dispatch/{route}"] = {"post": {
            "tags": ["dispatch"],
            "summary": f"{access} / {action}",
            "description": (ACTION_DATA[action].__doc__ or "").strip() or f"Sends `{action}` to the plugin.",
            "operationId": f"dispatch_{route.replace('/', '_')}_post",
            "security": template.get("security", []),
            "parameters": [tenant, plugin],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}},
            "responses": {"200": {"description": STREAM, "content": {"text/event-stream": {"schema": {
                "type": "string"}}}}},
        }}
