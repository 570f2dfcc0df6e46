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
import subprocess
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
    old = LEGACY.PluginAnswers(answers.kind, answers.name, answers.author, answers.description, answers.model_method,
                               answers.tool)
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


@pytest.mark.parametrize("tool", ["", "forecast", "Get-Weather_2"])
def test_the_tool_is_named_by_its_own_answer(tool: str) -> None:
    answers = PluginAnswers("tool", "weather", "acme", "Weather tools.", tool=tool)
    files = plugin_files(answers, NOW)
    assert files == legacy_files(answers)
    name = tool or "weather"
    assert yaml.safe_load(files[f"tools/{name}.yaml"])["identity"]["name"] == name
    assert yaml.safe_load(files["provider/weather.yaml"])["tools"] == [f"tools/{name}.yaml"]
    assert '"__NAME__"' not in files["tests/test_tool.py"] and f'"weather", "{name}"' in files["tests/test_tool.py"]


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


@pytest.mark.parametrize(("kind", "method"), [("tool", "predefined"), ("model", "predefined"),
                                             ("model", "customizable"), ("extension", "predefined"),
                                             ("agent-strategy", "predefined")])
def test_the_scaffolds_own_tests_pass_with_plain_pytest(tmp_path: Path, kind: str, method: str) -> None:
    """What the author runs first: ``pytest`` in the new folder, no daemon, no install."""
    root = tmp_path / "new-plugin"
    render_plugin(PluginAnswers(kind, "my_plugin", "acme", "Made by init.", method, tool="forecast"), root)
    assert [p.name for p in (root / "tests").iterdir()], "the scaffold has tests/"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=root,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout


def test_the_package_leaves_tests_caches_and_env_out(tmp_path: Path) -> None:
    from plugdock.packaging.build import build_package

    root = tmp_path / "p"
    render_plugin(PluginAnswers("tool", "p", "acme", "x", tool="forecast"), root)
    (root / "tests" / "__pycache__").mkdir()
    (root / "tests" / "__pycache__" / "test_tool.cpython-312.pyc").write_bytes(b"\0")
    (root / "tools" / "__pycache__").mkdir()
    (root / "tools" / "__pycache__" / "forecast.cpython-312.pyc").write_bytes(b"\0")
    (root / ".env").write_text("REMOTE_INSTALL_KEY=secret\n")
    (root / ".venv").mkdir()
    (root / ".venv" / "pyvenv.cfg").write_text("home = /usr\n")
    files = build_package(root).files
    assert not [f for f in files if f.startswith(("tests/", ".venv/", ".env")) or "__pycache__" in f], files
    assert {"tools/forecast.py", "tools/forecast.yaml"} <= set(files)
    env = dict(line.split("=", 1) for line in (root / ".env.example").read_text().splitlines()
               if line and not line.startswith("#"))
    assert set(env) == {"INSTALL_METHOD", "REMOTE_INSTALL_URL", "REMOTE_INSTALL_KEY"}


def test_init_checks_each_answer_as_it_is_given_and_asks_again(tmp_path: Path) -> None:
    answers = ("tool\nWeather App\nweather\nAcme Corp\nacme\nForecasts.\nget forecast\nforecast\n"
               "acme.dev/weather\nhttps://github.com/acme/weather\nnot-an-email\ndev@acme.example\n")
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "w")], input=answers)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Error: name 'Weather App' must match ^[a-z0-9_-]{1,128}$" in out
    assert out.index("Error: author 'Acme Corp' must match") < out.index("Description")  # asked at once, not at the end
    assert "Error: tool name 'get forecast' must match" in out
    assert "Error: repo 'acme.dev/weather' must be a source repository URL" in out
    assert "Error: contact 'not-an-email' must be an email address" in out
    manifest = (tmp_path / "w" / "manifest.yaml").read_text()
    assert "repo: https://github.com/acme/weather\ncontact: dev@acme.example\n" in manifest
    assert "created tool plugin acme/weather" in out and "plugdock invoke" in out and "tool forecast" in out
    assert (tmp_path / "w" / "tools" / "forecast.yaml").is_file()
    assert validate(tmp_path / "w")["valid"] is True
    given = CliRunner().invoke(cli, ["init", str(tmp_path / "x"), "--author", "Bad!", "--kind", "tool"], input="\n")
    assert given.exit_code == 1 and "author 'Bad!' must match" in given.output and "Tool name" not in given.output
    defaults = CliRunner().invoke(cli, ["init", str(tmp_path / "d"), "--kind", "tool", "--name", "d", "-y"])
    assert defaults.exit_code == 0 and (tmp_path / "d" / "tools" / "echo.yaml").is_file()


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
        archive.writestr("tool/tools/__pycache__/__TOOL__.cpython-312.pyc", b"\0")
    walked = templates._walk(zipfile.Path(zipfile.ZipFile(buffer), "tool/"))
    assert walked == templates._walk(templates.files("plugdock.cli").joinpath("scaffolds", "tool"))
    assert "tools/__TOOL__.py" in walked and not any("pycache" in rel for rel in walked)


@pytest.mark.slow
def test_init_output_passes_the_marketplace_checks_as_scaffolded(tmp_path: Path) -> None:
    """issue 19: what ``plugdock init`` writes passes ``plugdock publish check`` (the install check included)."""
    made = CliRunner().invoke(cli, ["init", str(tmp_path / "weather"), "--kind", "tool", "--name", "weather",
                                    "--author", "acme", "-y"])
    assert made.exit_code == 0, made.output
    checked = CliRunner().invoke(cli, ["publish", "check", str(tmp_path / "weather"), "--json"])
    report = json.loads(checked.output[checked.output.index("{"):])
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert checked.exit_code == 0 and not failed, failed
