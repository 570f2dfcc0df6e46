"""A running plugin imports only what it needs: no CLI, daemon, web framework, database, or (for tools) pydantic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"
FORBIDDEN = ("click", "rich", "fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic")
FORBIDDEN_OURS = ("plugdock.cli", "plugdock.daemon", "plugdock.packaging")

PROBE = """
import json, sys
sys.path.insert(0, '.')
from plugdock.runtime.executor import Executor
from plugdock.runtime.registry import PluginRegistry
from plugdock.runtime import entry, server, stdio  # noqa: F401 - the stdio start-up path
Executor(PluginRegistry.load('.'))
print(json.dumps(sorted(sys.modules)))
"""


def loaded(example: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=EXAMPLES / example, capture_output=True, text=True,
                         check=True)
    return set(json.loads(out.stdout))


def test_tool_plugin_start_up_is_lean() -> None:
    modules = loaded("echo_tool")
    assert not [m for m in modules if m.split(".")[0] in (*FORBIDDEN, "pydantic", "httpx", "werkzeug")]
    assert not [m for m in modules if m.startswith((*FORBIDDEN_OURS, "plugdock.schema"))]


def test_model_and_endpoint_plugins_load_only_their_own_extras() -> None:
    for example in ("echo_model", "hello_endpoint", "single_shot_agent"):
        modules = loaded(example)
        assert not [m for m in modules if m.split(".")[0] in FORBIDDEN], example
        assert not [m for m in modules if m.startswith(FORBIDDEN_OURS)], example
