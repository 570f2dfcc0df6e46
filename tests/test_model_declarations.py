"""Model declarations are served resolved, as the official daemon resolves them, and Dify's own models accept them.

The contract peer is ``graphon==0.5.1`` (the model runtime entities Dify 1.14 validates every daemon answer with:
``ProviderEntity``, ``AIModelEntity``, ``ParameterRule``), in its own Python 3.12 venv. The resolution rules are
the official daemon's (``pkg/entities/plugin_entities/model_declaration.go``): ``TransformTemplate`` fills a
``use_template`` rule's type, help, default, min, max, precision and options; a rule without an English label is
labelled with its name; ``fetch_from`` defaults to ``predefined-model``; absent lists become empty lists.
"""

from __future__ import annotations

import copy
import json
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from bench.environments import EnvironmentError_, _venv

from daemon_harness import DaemonProcess, eventually
from plugdock.packaging.build import build_package
from plugdock.runtime.remote import registration_lines
from plugdock.schema.declaration import plugin_declaration
from plugdock.schema.model_templates import (
    PARAMETER_RULE_TEMPLATES,
    resolve_model_declaration,
    resolve_parameter_rule,
)
from plugdock.schema.plugin import DirectorySource, load_plugin

from conftest import make_plugin

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
OFFICIAL = Path(__file__).resolve().parent / "fixtures" / "official"
OFFICIAL_PLUGINS = ("openai", "bedrock", "openai_api_compatible")
GRAPHON = "graphon==0.5.1"
LANGUAGES = ("en_US", "zh_Hans", "ja_JP", "pt_BR")

# Validates each provider declaration read from stdin with graphon's ProviderEntity; prints errors or what it kept.
CHECK = """
import json, sys
from pydantic import ValidationError
from graphon.model_runtime.entities.provider_entities import ProviderEntity
out = []
for provider in json.load(sys.stdin):
    try:
        entity = ProviderEntity.model_validate(provider)
    except ValidationError as exc:
        out.append({"errors": [".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors()]})
        continue
    models = [{"fetch_from": m.fetch_from.value,
               "rules": [r.model_dump(mode="json", by_alias=True) for r in m.parameter_rules]} for m in entity.models]
    out.append({"errors": [], "models": models})
print(json.dumps(out))
"""

EVERY_TEMPLATE = "model: pre-all\nlabel:\n  en_US: every template\nmodel_type: llm\nmodel_properties:\n" \
    "  mode: chat\n  context_size: 8192\nparameter_rules:\n" + "".join(
        f"  - name: {name}\n    use_template: {name}\n" for name in PARAMETER_RULE_TEMPLATES) + \
    "  - name: seed\n    label:\n      en_US: Seed\n      zh_Hans: 种子\n    type: int\n    required: false\n" \
    "  - name: custom_top_p\n    use_template: top_p\n    label:\n      en_US: My top p\n    max: 0.5\n"


@pytest.fixture(scope="session")
def graphon_python() -> str:
    """The python of a 3.12 venv with Dify's model runtime entities from PyPI (built once, then reused)."""
    try:
        return _venv("graphon-0.5.1-venv", [GRAPHON], "import graphon.model_runtime.entities.provider_entities")
    except EnvironmentError_ as exc:
        pytest.fail(str(exc))


def graphon_check(python: str, providers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    done = subprocess.run([python, "-c", CHECK], input=json.dumps(providers), capture_output=True, text=True,
                          timeout=120, check=True)
    return list(json.loads(done.stdout))


def declaration_of(root: Path) -> dict[str, Any]:
    plugin = load_plugin(DirectorySource(root))
    assert plugin.ok, [str(p) for p in plugin.errors]
    return plugin_declaration(plugin)


def unresolved(declaration: dict[str, Any]) -> dict[str, Any]:
    """A declaration as builds before this one stored it: rules as written (no template values), no fetch_from."""
    old = copy.deepcopy(declaration)
    for model in old["model"]["models"]:
        model.pop("fetch_from", None)
        rules = []
        for rule in model["parameter_rules"]:
            template = PARAMETER_RULE_TEMPLATES.get(rule.get("use_template") or "", {})
            rules.append({k: v for k, v in rule.items() if v is not None and v != template.get(k)
                          and v != {"en_US": rule["name"]} and v != [] and v is not False})
        model["parameter_rules"] = rules
    return old


@pytest.fixture(scope="module")
def every_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_plugin(tmp_path_factory.mktemp("tpl") / "pre", kind="model", name="pre")
    (root / "models" / "llm" / "pre-all.yaml").write_text(EVERY_TEMPLATE)
    return root


# -- the resolution itself ----------------------------------------------------------------------------


def test_template_fills_what_the_rule_leaves_out_and_keeps_what_it_sets() -> None:
    rule = resolve_parameter_rule({"name": "max_tokens", "use_template": "max_tokens", "default": 512, "max": 4096})
    template = PARAMETER_RULE_TEMPLATES["max_tokens"]
    assert rule["type"] == "int" and rule["help"] == template["help"]
    assert (rule["default"], rule["min"], rule["max"], rule["precision"]) == (512, 1.0, 4096, 0)
    assert set(rule["help"]) == set(LANGUAGES)
    # the official daemon labels a rule without an English label with its name, before the template is read
    assert rule["label"] == {"en_US": "max_tokens"}
    assert rule["options"] == [] and rule["required"] is False
    assert resolve_parameter_rule({"name": "rf", "use_template": "response_format"})["options"] == ["JSON", "XML"]
    assert resolve_parameter_rule({"name": "x", "label": {"zh_Hans": "只有中文"}, "type": "int"})["label"] == \
        {"en_US": "x"}
    kept = resolve_parameter_rule({"name": "t", "use_template": "temperature", "label": {"en_US": "T", "ja_JP": "温"}})
    assert kept["label"] == {"en_US": "T", "ja_JP": "温"}


def test_the_official_template_table() -> None:
    assert list(PARAMETER_RULE_TEMPLATES) == ["temperature", "top_p", "top_k", "presence_penalty",
                                              "frequency_penalty", "max_tokens", "response_format", "json_schema"]
    assert PARAMETER_RULE_TEMPLATES["temperature"]["label"] == {
        "en_US": "Temperature", "zh_Hans": "温度", "ja_JP": "温度", "pt_BR": "Temperatura"}
    assert set(PARAMETER_RULE_TEMPLATES["top_k"]["help"]) == {"en_US", "zh_Hans"}
    assert set(PARAMETER_RULE_TEMPLATES["json_schema"]["help"]) == {"en_US", "zh_Hans"}
    assert PARAMETER_RULE_TEMPLATES["json_schema"]["label"] == {"en_US": "JSON Schema"}
    assert [(t["type"], t.get("default"), t.get("min"), t.get("max"), t.get("precision"))
            for t in PARAMETER_RULE_TEMPLATES.values()] == [
        ("float", 0.0, 0.0, 1.0, 2), ("float", 1.0, 0.0, 1.0, 2), ("int", 50, 1.0, 100.0, 0),
        ("float", 0.0, 0.0, 1.0, 2), ("float", 0.0, 0.0, 1.0, 2), ("int", 64, 1.0, 2048.0, 0),
        ("string", None, None, None, None), ("string", None, None, None, None)]


def test_resolution_is_idempotent_and_restores_old_declarations(every_template: Path) -> None:
    declaration = declaration_of(every_template)
    assert resolve_model_declaration(declaration) == declaration
    assert resolve_model_declaration(unresolved(declaration)) == declaration
    tool = declaration_of(EXAMPLES / "echo_tool")
    assert resolve_model_declaration(tool) is tool


def test_fetch_from_defaults_to_predefined_and_an_explicit_one_stays() -> None:
    declaration = {"model": {"models": [{"model": "a", "model_type": "llm"},
                                        {"model": "b", "model_type": "llm", "fetch_from": "customizable-model"}]}}
    models = resolve_model_declaration(declaration)["model"]["models"]
    assert [m["fetch_from"] for m in models] == ["predefined-model", "customizable-model"]
    assert models[0]["parameter_rules"] == [] and models[0]["label"] == {"en_US": "a"}


# -- against Dify's own models (graphon==0.5.1) --------------------------------------------------------


def test_dify_accepts_every_model_declaration(graphon_python: str, every_template: Path,
                                              tmp_path: Path) -> None:
    customizable = make_plugin(tmp_path / "cus", kind="model", name="cus", model_method="customizable")
    declarations = [declaration_of(root) for root in (EXAMPLES / "echo_model", customizable, every_template)]
    results = graphon_check(graphon_python, [d["model"] for d in declarations])
    assert [r["errors"] for r in results] == [[], [], []]
    echo, _, every = results
    assert [m["fetch_from"] for m in every["models"]] == ["predefined-model", "predefined-model"]
    rules = {r["name"]: r for r in next(m["rules"] for m in every["models"] if len(m["rules"]) > 2)}
    for name, template in PARAMETER_RULE_TEMPLATES.items():
        assert rules[name]["type"] == template["type"]
        # graphon's I18nObject keeps en_US and zh_Hans (en_US when absent); the other languages are plugdock's to serve
        assert rules[name]["help"] == {"en_US": template["help"]["en_US"],
                                       "zh_Hans": template["help"].get("zh_Hans", template["help"]["en_US"])}
        assert rules[name]["options"] == template.get("options", [])
    assert rules["custom_top_p"]["label"]["en_US"] == "My top p" and rules["custom_top_p"]["max"] == 0.5
    assert rules["custom_top_p"]["min"] == 0.0 and rules["seed"]["label"]["zh_Hans"] == "种子"
    temperature = echo["models"][0]["rules"][0]
    assert (temperature["type"], temperature["min"], temperature["max"], temperature["precision"]) == \
        ("float", 0.0, 1.0, 2)


def test_the_old_shape_is_what_dify_refused(graphon_python: str) -> None:
    """The checker sees the bug of issue 14: the declaration as stored before resolution fails as Dify reported."""
    (result,) = graphon_check(graphon_python, [unresolved(declaration_of(EXAMPLES / "echo_model"))["model"]])
    assert "models.0.fetch_from: Field required" in result["errors"]
    assert "models.0.parameter_rules.0.label: Field required" in result["errors"]
    assert "models.0.parameter_rules.0.type: Field required" in result["errors"]


# -- official plugins (declarations vendored from langgenius/dify-official-plugins, see fixtures/official/NOTICE) -


def official_declarations() -> dict[str, dict[str, Any]]:
    return {name: declaration_of(OFFICIAL / name) for name in OFFICIAL_PLUGINS}


def test_dify_accepts_official_model_declarations(graphon_python: str) -> None:
    declarations = official_declarations()
    results = dict(zip(declarations, graphon_check(graphon_python, [d["model"] for d in declarations.values()]),
                       strict=True))
    assert {name: r["errors"] for name, r in results.items()} == {name: [] for name in OFFICIAL_PLUGINS}
    openai = declarations["openai"]["model"]
    assert len(openai["models"]) == len(results["openai"]["models"]) == 8
    assert {m["fetch_from"] for m in results["openai"]["models"]} == {"predefined-model"}
    served = {m["model"]: {r["name"]: r for r in m["parameter_rules"]} for m in openai["models"]}
    templated = 0
    for file in (OFFICIAL / "openai" / "models" / "llm").glob("[!_]*.yaml"):
        model = yaml.safe_load(file.read_text())
        for written in model["parameter_rules"]:
            rule = served[model["model"]][written["name"]]
            template = PARAMETER_RULE_TEMPLATES.get(written.get("use_template") or "")
            if template is None:
                continue
            templated += 1
            assert rule["type"] == template["type"] and rule["precision"] == written.get("precision",
                                                                                           template.get("precision"))
            assert rule["help"] == written.get("help", template["help"])
            assert rule["label"] == written.get("label", {"en_US": written["name"]})  # the official daemon's rule
    assert templated >= 4, "the official openai models use use_template"


def test_official_quirks_are_served_as_dify_reads_them(graphon_python: str) -> None:
    declarations = official_declarations()
    bedrock = declarations["bedrock"]["model"]
    forms = bedrock["provider_credential_schema"]["credential_form_schemas"]
    written = yaml.safe_load((OFFICIAL / "bedrock" / "provider" / "bedrock.yaml").read_text())
    malformed = [f["variable"] for f in written["provider_credential_schema"]["credential_form_schemas"]
                 if "help" in f and "en_US" not in f["help"]]
    assert malformed and all("help" not in f for f in forms if f["variable"] in malformed)
    compatible = declarations["openai_api_compatible"]["model"]
    assert len(compatible["model_credential_schema"]["credential_form_schemas"]) == 36
    assert [r["errors"] for r in graphon_check(graphon_python, [bedrock, compatible])] == [[], []]


# -- through a real daemon --------------------------------------------------------------------------------


def assert_resolved(provider: dict[str, Any]) -> None:
    (model,) = provider["models"]
    assert model["fetch_from"] == "predefined-model"
    temperature, max_tokens = model["parameter_rules"]
    assert temperature["label"] == {"en_US": "temperature"} and temperature["type"] == "float"
    assert set(temperature["help"]) == set(LANGUAGES)
    assert temperature["help"] == PARAMETER_RULE_TEMPLATES["temperature"]["help"]
    assert (temperature["default"], temperature["min"], temperature["max"], temperature["precision"]) == (0, 0, 1, 2)
    assert (max_tokens["type"], max_tokens["default"], max_tokens["max"], max_tokens["precision"]) == \
        ("int", 512, 4096, 0)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("home")).start()
    yield d
    d.stop()


@pytest.mark.slow
def test_the_daemon_serves_resolved_declarations_everywhere(daemon: DaemonProcess, graphon_python: str) -> None:
    d = daemon
    uploaded = d.data(d.client.post("/plugin/t1/management/install/upload/package",
                                    files={"dify_pkg": ("p.difypkg", build_package(EXAMPLES / "echo_model").data)}))
    assert_resolved(uploaded["manifest"]["model"])
    identifier = d.install(EXAMPLES / "echo_model")
    listed = next(p for p in d.data(d.client.get("/plugin/t1/management/list"))["list"]
                  if p["plugin_unique_identifier"] == identifier)
    (provider,) = [p for p in d.data(d.client.get("/plugin/t1/management/models")) if p["plugin_id"] == listed[
        "plugin_id"]]
    manifest = d.data(d.client.get("/plugin/t1/management/fetch/manifest",
                                   params={"plugin_unique_identifier": identifier}))
    decoded = d.data(d.client.get("/plugin/t1/management/decode/from_identifier",
                                  params={"plugin_unique_identifier": identifier}))
    served = [listed["declaration"]["model"], provider["declaration"], manifest["model"], decoded["manifest"]["model"]]
    for model in served:
        assert_resolved(model)
    assert [r["errors"] for r in graphon_check(graphon_python, served)] == [[]] * 4

    # a declaration stored by an earlier build is resolved again when the daemon starts
    d.stop()
    with sqlite3.connect(d.home / "plugdock.db") as db:
        db.execute("UPDATE plugins SET declaration = ? WHERE unique_identifier = ?",
                   (json.dumps(unresolved(manifest)), identifier))
    d.start()
    again = d.data(d.client.get("/plugin/t1/management/fetch/manifest",
                                params={"plugin_unique_identifier": identifier}))
    assert again == manifest


@pytest.mark.slow
def test_the_daemon_takes_official_packages_and_serves_what_dify_accepts(daemon: DaemonProcess,
                                                                          graphon_python: str) -> None:
    """Upload as Dify does (decode only): the official declarations, quirks included, pass the daemon's checks."""
    served = []
    for name in OFFICIAL_PLUGINS:
        package = build_package(OFFICIAL / name).data
        uploaded = daemon.data(daemon.client.post("/plugin/t3/management/install/upload/package",
                                                  files={"dify_pkg": (f"{name}.difypkg", package)}))
        assert uploaded["manifest"]["name"] == name
        served.append(uploaded["manifest"]["model"])
    def without_icons(provider: dict[str, Any]) -> dict[str, Any]:  # the daemon names icons by their asset hash
        return {k: v for k, v in provider.items() if not k.startswith("icon")}

    assert [without_icons(m) for m in served] == [without_icons(d["model"]) for d in official_declarations().values()]
    assert [r["errors"] for r in graphon_check(graphon_python, served)] == [[]] * len(OFFICIAL_PLUGINS)


@pytest.mark.slow
def test_a_debugging_plugins_declaration_is_resolved(daemon: DaemonProcess) -> None:
    d = daemon
    key, port = (lambda data: (data["key"], data["port"]))(d.data(d.client.post("/plugin/t2/debugging/key")))
    lines = []
    for line in registration_lines(EXAMPLES / "echo_model", key):
        message = json.loads(line)
        if message["type"] == "manifest_declaration":
            message["data"] = unresolved(message["data"])
        elif message["type"] == "model_declaration":
            message["data"] = [unresolved({"model": message["data"][0]})["model"]]
        lines.append(json.dumps(message).encode() + b"\n")
    (model_line,) = [json.loads(line) for line in lines if b'"model_declaration"' in line]
    assert "fetch_from" not in model_line["data"][0]["models"][0]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"".join(lines))
        listing = eventually(lambda: d.data(d.client.get("/plugin/t2/management/list"))["list"],
                             "the debugging plugin never appeared", 30)
        (entry,) = listing
        assert entry["runtime_type"] == "remote"
        assert_resolved(entry["declaration"]["model"])
        (provider,) = d.data(d.client.get("/plugin/t2/management/models"))
        assert_resolved(provider["declaration"])
