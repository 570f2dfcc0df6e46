"""Shared fixtures: real plugin folders made by ``plugdock init`` and a helper to build packages."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.environments import EnvironmentError_
from bench.environments import official_python as _official_python

from plugdock.cli.templates import PluginAnswers, render_plugin

KINDS = [
    ("tool", "predefined"),
    ("model", "predefined"),
    ("model", "customizable"),
    ("extension", "predefined"),
    ("agent-strategy", "predefined"),
]


def make_plugin(root: Path, kind: str = "tool", name: str = "demo", model_method: str = "predefined") -> Path:
    render_plugin(
        PluginAnswers(kind=kind, name=name, author="tester", description="A test plugin.", model_method=model_method),
        root,
    )
    return root


@pytest.fixture
def tool_plugin(tmp_path: Path) -> Path:
    return make_plugin(tmp_path / "demo")


# -- the official SDK as a conformance peer -------------------------------------------------------------


@pytest.fixture(scope="session")
def official_python() -> str:
    """The python of a 3.12 venv with the official ``dify-plugin`` from PyPI (built once, then reused)."""
    try:
        return _official_python()
    except EnvironmentError_ as exc:
        pytest.fail(str(exc))

