"""The ``plugdock init`` scaffolds: package-data files that render exactly as the old string templates did.

Every kind and option is rendered with the scaffold files and with a frozen copy of the former module
(fixtures/legacy_templates.py) and compared byte for byte; rendered plugins pass ``plugdock validate
--strict`` and compile; the raw template files are themselves valid YAML and Python.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib.util
import io
import json
import sys
import types
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from plugdock.cli import templates
from plugdock.cli.main import cli
from plugdock.cli.templates import KINDS, PLACEHOLDER, PluginAnswers, fill, layers, plugin_files, render_plugin
from plugdock.errors import PlugdockError

SCAFFOLDS = Path(templates.__file__).parent / "scaffolds"
NOW = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
COMBINATIONS = [(kind, method) for kind in KINDS for method in ("predefined", "customizable")]


def _legacy() -> ModuleType:
    """The former templates module, with its clock fixed at NOW."""
    path = Path(__file__).parent / "fixtures" / "legacy_templates.py"
    spec = importlib.util.spec_from_file_location("legacy_templates", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)

    class FixedClock(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> FixedClock:
            return cls.fromtimestamp(NOW.timestamp(), tz)

    module.dt = types.SimpleNamespace(datetime=FixedClock, UTC=dt.UTC)
    return module


LEGACY = _legacy()


def legacy_files(answers: PluginAnswers) -> dict[str, str]:
    old = LEGACY.PluginAnswers(answers.kind, answers.name, answers.author, answers.description, answers.model_method)
    result: dict[str, str] = LEGACY.plugin_files(old)
    return result


def validate(folder: Path) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["validate", str(folder), "--strict", "--json"])
    report: dict[str, object] = json.loads(result.output)
    assert result.exit_code == 0, report
    return report


# -- same bytes as before --------------------------------------------------------------------------------


# kinds added after the string templates were retired (datasource, trigger) have no former bytes to match
LEGACY_COMBINATIONS = [(kind, method) for kind, method in COMBINATIONS if kind in LEGACY.KINDS]


@pytest.mark.parametrize(("kind", "method"), LEGACY_COMBINATIONS)
def test_every_kind_renders_as_the_string_templates_did(kind: str, method: str) -> None:
    answers = PluginAnswers(kind, "my-echo_tool", "acme", 'Says "hi" \\ back, über 100%. __NAME__ stays.', method)
    assert plugin_files(answers, NOW) == legacy_files(answers)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(LEGACY.KINDS),
    method=st.sampled_from(["predefined", "customizable"]),
    name=st.from_regex(r"\A[a-z0-9_-]{1,40}\Z"),
    author=st.from_regex(r"\A[a-z0-9_-]{1,20}\Z"),
    # The old README ran the description through string.Template, so "$name" or "$$" in it changed.
    description=st.text(st.characters(exclude_characters="$", exclude_categories=("Cs",)), max_size=60),
)
def test_any_answers_render_as_the_string_templates_did(
    kind: str, method: str, name: str, author: str, description: str
) -> None:
    answers = PluginAnswers(kind, name, author, description, method)
    assert plugin_files(answers, NOW) == legacy_files(answers)


def test_a_description_is_written_as_typed() -> None:
    """Single-pass filling: dollars and placeholder look-alikes in an answer are not substituted."""
    answers = PluginAnswers("tool", "demo", "acme", "costs $$5 for $name, __AUTHOR__ or ${x}")
    files = plugin_files(answers, NOW)
    assert "costs $$5 for $name, __AUTHOR__ or ${x}\n" in files["README.md"]
    assert yaml.safe_load(files["manifest.yaml"])["description"]["en_US"] == answers.description


def test_every_scaffold_file_is_used() -> None:
    used = {f"{layer}/{rel}" for kind, method in COMBINATIONS
            for layer in layers(PluginAnswers(kind, "x", "y", "z", method))
            for rel in templates._walk(templates.files("plugdock.cli").joinpath("scaffolds", layer))}
    on_disk = {p.relative_to(SCAFFOLDS).as_posix() for p in SCAFFOLDS.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert on_disk == used


# -- rendered plugins work -------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "method"), [c for c in COMBINATIONS if c[0] == "model" or c[1] == "predefined"])
def test_rendered_plugin_validates_and_compiles(tmp_path: Path, kind: str, method: str) -> None:
    answers = PluginAnswers(kind, "demo_plugin", "acme", 'Quotes " and \\ and\nnew lines: ok', method)
    answers.check()
    written = render_plugin(answers, tmp_path)
    assert written == sorted(written) and all(p.is_file() for p in written)
    report = validate(tmp_path)
    assert report["valid"] is True and report["problems"] == []
    assert report["kind"] == kind
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert not PLACEHOLDER.search(text) and not PLACEHOLDER.search(path.name), path
        if path.suffix == ".py":
            compile(text, str(path), "exec")
    manifest = yaml.safe_load((tmp_path / "manifest.yaml").read_text(encoding="utf-8"))
    assert manifest["description"]["en_US"] == answers.description.replace("\n", " ")


# -- the template files themselves -----------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SCAFFOLDS.rglob("*.py")), ids=lambda p: p.relative_to(SCAFFOLDS).as_posix())
def test_python_templates_parse_and_use_only_safe_placeholders(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    ast.parse(text, str(path))
    assert set(PLACEHOLDER.findall(text)) <= templates.PYTHON_SAFE


@pytest.mark.parametrize("path", sorted(SCAFFOLDS.rglob("*.yaml")), ids=lambda p: p.relative_to(SCAFFOLDS).as_posix())
def test_yaml_templates_load(path: Path) -> None:
    assert yaml.safe_load(path.read_text(encoding="utf-8")) is not None


def test_unknown_or_unsafe_placeholders_are_template_bugs() -> None:
    with pytest.raises(PlugdockError, match="unknown placeholder __NOPE__"):
        fill("x: __NOPE__\n", {"NAME": "n"}, "a.yaml")
    with pytest.raises(PlugdockError, match="not allowed in Python code"):
        fill('"""__DESCRIPTION__"""\n', {"DESCRIPTION": '"""; import os'}, "a.py")
    assert fill("if __name__ == '__main__': __NAME__\n", {"NAME": "n"}, "a.py") == "if __name__ == '__main__': n\n"
    assert fill('d: "__DESCRIPTION__"', {"DESCRIPTION": 'a"b\\'}, "a.yaml") == 'd: "a\\"b\\\\"'


def test_scaffolds_load_from_a_zip_and_skip_bytecode() -> None:
    """Installed from a zipped distribution, or with ``__pycache__`` left by pip's compile step."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted((SCAFFOLDS / "tool").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(SCAFFOLDS).as_posix())
        archive.writestr("tool/tools/__pycache__/__NAME__.cpython-312.pyc", b"\0")
    walked = templates._walk(zipfile.Path(zipfile.ZipFile(buffer), "tool/"))
    assert walked == templates._walk(templates.files("plugdock.cli").joinpath("scaffolds", "tool"))
    assert "tools/__NAME__.py" in walked and not any("pycache" in rel for rel in walked)
