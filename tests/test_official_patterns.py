"""What official plugins do that plugdock once refused (issue 16 §1), reproduced with small plugins of our own.

The official packager and daemon accept these, so plugdock's ``validate``, ``package`` and the daemon's upload
(the same loader, reading the package) accept them too, each with a warning that says what the official daemon
does. The catalogue itself (262 plugins at a fixed commit) is swept by ``python -m bench.catalogue``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from plugdock.errors import PackageError, ValidationFailed
from plugdock.packaging.archive import ArchiveSource, PackageArchive
from plugdock.packaging.build import build_package, collect_files
from plugdock.packaging.ignore import ignore_filter
from plugdock.schema import python_check
from plugdock.schema.declaration import plugin_declaration
from plugdock.schema.plugin import DirectorySource, LoadedPlugin, load_plugin
from plugdock.schema.problems import Problem

from conftest import make_plugin


def loaded(root: Path) -> LoadedPlugin:
    return load_plugin(DirectorySource(root, exclude=ignore_filter(root)))


def accepted(root: Path) -> tuple[LoadedPlugin, list[Problem]]:
    """Validate, package and read the package back as the daemon's upload does; the warnings of validate."""
    plugin = loaded(root)
    assert plugin.ok, [str(p) for p in plugin.errors]
    uploaded = load_plugin(ArchiveSource(PackageArchive.open(build_package(root).data)))
    assert uploaded.ok, [str(p) for p in uploaded.errors]
    # the same warnings, but those about the folder's links: a package holds files only
    assert [str(p) for p in uploaded.problems if not p.is_error] == \
        [str(p) for p in plugin.problems if not p.is_error and not p.message.startswith("symbolic link")]
    return uploaded, [p for p in plugin.problems if not p.is_error]


def edit_yaml(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


@pytest.fixture
def customizable(tmp_path: Path) -> Path:
    return make_plugin(tmp_path / "cus", kind="model", name="cus", model_method="customizable")


# -- models: globs, credential forms, help --------------------------------------------------------------


def test_a_predefined_glob_matching_nothing_is_a_warning(customizable: Path) -> None:
    provider = customizable / "provider" / "cus.yaml"
    edit_yaml(provider, lambda d: d.update(models={"llm": {"predefined": ["models/llm/*.yaml"]}}))
    plugin, warnings = accepted(customizable)
    assert plugin.models == []
    (warning,) = [w for w in warnings if "no model file" in w.message]
    assert warning.file == "provider/cus.yaml" and warning.field == "models.llm.predefined[0]"
    assert warning.message == ("no model file matches 'models/llm/*.yaml'; the official daemon loads no predefined "
                               "models from it")


def test_more_than_32_credential_forms_is_a_warning(customizable: Path) -> None:
    forms = [{"variable": f"v{i}", "label": {"en_US": f"V{i}"}, "type": "text-input"} for i in range(36)]
    edit_yaml(customizable / "provider" / "cus.yaml",
              lambda d: d["model_credential_schema"].update(credential_form_schemas=forms))
    plugin, warnings = accepted(customizable)
    assert plugin.model_provider is not None and plugin.model_provider.model_credential_schema is not None
    assert len(plugin.model_provider.model_credential_schema.credential_form_schemas or []) == 36
    (warning,) = warnings
    assert warning.field == "model_credential_schema.credential_form_schemas"
    assert warning.message.startswith("36 credential_form_schemas, over the official 32; the official daemon "
                                      "installs the package but refuses the declaration from a remote-debugging")


def test_a_help_block_without_en_us_is_left_out_with_a_warning(customizable: Path) -> None:
    def malformed(data: dict[str, Any]) -> None:
        data["model_credential_schema"]["credential_form_schemas"][0]["help"] = {"text": {"en_US": "Custom URL"}}

    edit_yaml(customizable / "provider" / "cus.yaml", malformed)
    plugin, warnings = accepted(customizable)
    (warning,) = warnings
    assert warning.field == "model_credential_schema.credential_form_schemas[0].help"
    assert warning.message.startswith("help has no en_US text, so it is left out; the official daemon reads it as "
                                      "empty text")
    served = plugin_declaration(plugin)["model"]["model_credential_schema"]["credential_form_schemas"][0]
    assert "help" not in served and served["variable"] == "endpoint_url"


def test_a_help_that_is_not_a_mapping_is_still_an_error(customizable: Path) -> None:
    edit_yaml(customizable / "provider" / "cus.yaml",
              lambda d: d["model_credential_schema"]["credential_form_schemas"][0].update(help="plain text"))
    assert not loaded(customizable).ok  # yaml.v3 cannot decode a string into I18nObject either


# -- tools: booleans as text, repeated parameters -------------------------------------------------------


TOOL_WITH_OPTIONS = """identity:
  name: demo
  author: tester
  label:
    en_US: Demo
description:
  human:
    en_US: Echo the text back.
  llm: Returns the given text unchanged.
parameters:
  - name: country
    type: select
    form: form
    label:
      en_US: Country
    options:
      - label:
          en_US: Norway
        value: false
      - label:
          en_US: Nauru
        value: no
      - label:
          en_US: Tonga
        value: True
  - name: text
    type: string
    form: llm
    label:
      en_US: Text
  - name: wait
    type: boolean
    form: form
    default: false
    label:
      en_US: Wait
  - name: text
    type: string
    form: form
    label:
      en_US: Text again
extra:
  python:
    source: tools/demo.py
"""


def line_of(text: str) -> int:
    return next(n for n, line in enumerate(TOOL_WITH_OPTIONS.splitlines(), 1) if line.strip() == text)


def test_a_boolean_in_a_text_field_keeps_its_text_as_yaml_v3_does(tool_plugin: Path) -> None:
    (tool_plugin / "tools" / "demo.yaml").write_text(TOOL_WITH_OPTIONS)
    plugin, warnings = accepted(tool_plugin)
    (tool,) = plugin.tools
    assert tool.parameters is not None
    assert [o.value for o in tool.parameters[0].options or []] == ["false", "no", "True"]
    assert tool.parameters[2].default is False  # a boolean where a boolean fits stays one
    texts = [w for w in warnings if "YAML boolean" in w.message]
    assert [(w.line, w.field) for w in texts] == [(line_of("value: false"), "parameters[0].options[0].value"),
                                                  (line_of("value: True"), "parameters[0].options[2].value")]
    assert texts[0].message == ("false is a YAML boolean where text is expected; read as the text 'false', as the "
                                "official daemon (yaml.v3) reads it; quote it to say so")
    served = plugin_declaration(plugin)["tool"]["tools"][0]["parameters"][0]["options"]
    assert [o["value"] for o in served] == ["false", "no", "True"]


def test_a_repeated_tool_parameter_is_a_warning_at_the_repeat(tool_plugin: Path) -> None:
    (tool_plugin / "tools" / "demo.yaml").write_text(TOOL_WITH_OPTIONS)
    _, warnings = accepted(tool_plugin)
    (repeat,) = [w for w in warnings if "repeats" in w.message]
    repeat_line = TOOL_WITH_OPTIONS.splitlines().index("      en_US: Text again") - 3  # its "- name: text"
    assert (repeat.file, repeat.line, repeat.column, repeat.field) == ("tools/demo.yaml", repeat_line, 11,
                                                                       "parameters[3].name")
    assert repeat.message == ("parameter 'text' repeats parameters[1]; the official daemon installs the tool with "
                              "both declarations; rename or remove one")


# -- Python sources ------------------------------------------------------------------------------------------


def point_source_at(tool_plugin: Path, source: str) -> None:
    edit_yaml(tool_plugin / "tools" / "demo.yaml", lambda d: d["extra"]["python"].update(source=source))


def test_a_yaml_source_is_read_as_the_module_the_official_sdk_imports(tool_plugin: Path) -> None:
    point_source_at(tool_plugin, "tools/demo.yaml")
    plugin, warnings = accepted(tool_plugin)
    (warning,) = warnings
    assert warning.field == "extra.python.source"
    assert warning.message == ("source 'tools/demo.yaml' is not a .py file; the official SDK imports the module "
                               "'tools.demo' by name, which is 'tools/demo.py': name that file")
    assert "tools/demo.py" in plugin.python_sources and "tools/demo.yaml" not in plugin.python_sources
    (tool_plugin / "tools" / "demo.py").write_text("def broken(:\n")
    (error,) = loaded(tool_plugin).errors
    assert error.file == "tools/demo.py" and error.message.startswith("Python syntax error")  # not the YAML


def test_a_non_python_source_without_its_module_is_an_error(tool_plugin: Path) -> None:
    (tool_plugin / "tools" / "other.yaml").write_text("a: 1\n")
    point_source_at(tool_plugin, "tools/other.yaml")
    (error,) = loaded(tool_plugin).errors
    assert error.field == "extra.python.source"
    assert error.message == ("source 'tools/other.yaml' is not a .py file, and 'tools/other.py', the module "
                             "'tools.other' the official SDK would import, does not exist in the plugin")


PEP_701 = 'def label(item: dict) -> str:\n    return f"{item["name"]} ({item["id"]})"\n'


def test_newer_syntax_is_parsed_by_the_python_the_plugin_asks_for(tool_plugin: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A host older than meta.runner.version hands the parse to that version's interpreter (here: this one)."""
    monkeypatch.setattr(python_check, "host_version", lambda: (3, 10))
    monkeypatch.setattr(python_check, "find_python", lambda version: sys.executable)
    (tool_plugin / "tools" / "demo.py").write_text("x = 1\ndef broken(:\n")
    (error,) = loaded(tool_plugin).errors
    assert (error.file, error.line, error.message) == ("tools/demo.py", 2, "Python syntax error: invalid syntax")


def test_a_newer_host_also_hands_the_parse_to_the_version_asked_for(tool_plugin: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A 3.13 host accepts syntax a 3.12 plugin cannot run, so it parses with 3.12 too when there is one."""
    used: list[str] = []
    parse_with = python_check._parse_with

    def spy(interpreter: str, sources: dict[str, bytes]) -> list[Problem] | None:
        used.append(interpreter)
        return parse_with(interpreter, sources)

    monkeypatch.setattr(python_check, "host_version", lambda: (3, 13))
    monkeypatch.setattr(python_check, "find_python", lambda version: sys.executable)
    monkeypatch.setattr(python_check, "_parse_with", spy)
    (tool_plugin / "tools" / "demo.py").write_text("def broken(:\n")
    (error,) = loaded(tool_plugin).errors
    assert used == [sys.executable] and error.message == "Python syntax error: invalid syntax"


def test_newer_syntax_with_no_such_python_here_is_a_warning(tool_plugin: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(python_check, "host_version", lambda: (3, 11))
    monkeypatch.setattr(python_check, "find_python", lambda version: None)
    (tool_plugin / "tools" / "demo.py").write_text("def broken(:\n")
    plugin = loaded(tool_plugin)
    assert plugin.ok
    (warning,) = plugin.problems
    assert warning.file == "tools/demo.py" and warning.severity == "warning"
    assert warning.message == ("Python syntax error: invalid syntax under Python 3.11; the plugin asks for Python "
                               "3.12 (meta.runner.version), which the official daemon runs it with, and none was "
                               "found here to check with")


def test_pep_701_f_strings_pass_with_a_real_python_3_12(tool_plugin: Path) -> None:
    if sys.version_info < (3, 12) and python_check.find_python((3, 12)) is None:
        pytest.skip("no Python 3.12 on this machine")
    (tool_plugin / "tools" / "labels.py").write_text(PEP_701)
    point_source_at(tool_plugin, "tools/labels.py")
    (tool_plugin / "tools" / "labels.py").write_text(PEP_701 + (tool_plugin / "tools" / "demo.py").read_text())
    _, warnings = accepted(tool_plugin)
    assert warnings == []


# -- symbolic links ---------------------------------------------------------------------------------------------


def test_a_link_to_a_file_inside_is_packed_as_the_targets_bytes(tool_plugin: Path) -> None:
    (tool_plugin / "_assets" / "icon-dark.svg").symlink_to("icon.svg")
    accepted(tool_plugin)
    files = dict(collect_files(tool_plugin))
    assert files["_assets/icon-dark.svg"] == (tool_plugin / "_assets" / "icon.svg").read_bytes()
    archive = PackageArchive.open(build_package(tool_plugin).data)
    assert archive.read("_assets/icon-dark.svg") == files["_assets/icon.svg"]


@pytest.mark.parametrize("kind", ["outside", "directory", "dangling"])
def test_other_links_are_refused_by_validate_and_package(tool_plugin: Path, tmp_path: Path, kind: str) -> None:
    (tmp_path / "secret.txt").write_text("not for the package")
    target = {"outside": str(tmp_path / "secret.txt"), "directory": "tools", "dangling": "gone.txt"}[kind]
    reason = {"outside": "leaves the plugin", "directory": "is a directory", "dangling": "does not exist"}[kind]
    (tool_plugin / "extra").symlink_to(target)
    (error,) = loaded(tool_plugin).errors
    assert error.file == "extra" and error.message.startswith(f"symbolic link to {target!r}, which {reason}")
    with pytest.raises(ValidationFailed):
        build_package(tool_plugin)
    with pytest.raises(PackageError, match=f"^extra: symbolic link to '{target}', which {reason}"):
        collect_files(tool_plugin)


def test_an_ignored_link_is_not_looked_at(tool_plugin: Path, tmp_path: Path) -> None:
    (tool_plugin / "extra").symlink_to(tmp_path)
    (tool_plugin / ".difyignore").write_text((tool_plugin / ".difyignore").read_text() + "\nextra\n")
    accepted(tool_plugin)


def test_a_shared_ignore_file_linked_from_outside_applies_and_stays_out(tool_plugin: Path, tmp_path: Path) -> None:
    """models/gemini links .difyignore to the repository's shared one (../../.difyignore)."""
    shared = tmp_path / "shared.difyignore"
    shared.write_text("notes/\n")
    (tool_plugin / ".difyignore").unlink()
    (tool_plugin / ".difyignore").symlink_to(shared)
    (tool_plugin / "notes").mkdir()
    (tool_plugin / "notes" / "todo.txt").write_text("x")
    _, warnings = accepted(tool_plugin)
    (warning,) = warnings
    assert warning.file == ".difyignore" and "its patterns apply, but it is left out of the package" in warning.message
    names = build_package(tool_plugin).files
    assert ".difyignore" not in names and "notes/todo.txt" not in names


# -- the daemon's upload ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_daemons_upload_takes_every_pattern(tool_plugin: Path, customizable: Path, tmp_path: Path) -> None:
    from daemon_harness import DaemonProcess

    # PyYAML (YAML 1.1) would turn the `no` into false: edit the text
    (tool_plugin / "tools" / "demo.yaml").write_text(TOOL_WITH_OPTIONS.replace("source: tools/demo.py",
                                                                               "source: tools/demo.yaml"))

    def quirks(data: dict[str, Any]) -> None:
        forms = [{"variable": f"v{i}", "label": {"en_US": f"V{i}"}, "type": "text-input",
                  "help": {"text": {"en_US": "nested"}}} for i in range(33)]
        data["model_credential_schema"]["credential_form_schemas"] = forms
        data["models"] = {"llm": {"predefined": ["models/llm/*.yaml"]}}

    edit_yaml(customizable / "provider" / "cus.yaml", quirks)
    daemon = DaemonProcess(tmp_path / "home").start()
    try:
        manifests = []
        for root in (tool_plugin, customizable):
            answer = daemon.client.post("/plugin/t1/management/install/upload/package",
                                        files={"dify_pkg": ("p.difypkg", build_package(root).data)})
            manifests.append(daemon.data(answer)["manifest"])
    finally:
        daemon.stop()
    options = manifests[0]["tool"]["tools"][0]["parameters"][0]["options"]
    assert [o["value"] for o in options] == ["false", "no", "True"]
    forms = manifests[1]["model"]["model_credential_schema"]["credential_form_schemas"]
    assert len(forms) == 33 and not any("help" in f for f in forms)
    assert manifests[1]["model"]["models"] == []
