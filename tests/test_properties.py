"""Property tests: YAML -> model -> YAML loses nothing; packaging is deterministic; the loader never crashes."""

from __future__ import annotations

import string
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugdock.packaging.archive import PackageArchive
from plugdock.packaging.checksum import package_checksum
from plugdock.packaging.zipfiles import write_zip
from plugdock.schema import KINDS, ModelDeclaration, PluginManifest, ToolDeclaration
from plugdock.schema.plugin import load_plugin
from plugdock.schema.validation import validate_document
from plugdock.schema.yaml_source import load_yaml

text = st.text(alphabet=string.ascii_letters + string.digits + " _-.,:!?éü中", min_size=1, max_size=20)
ident = st.text(alphabet=string.ascii_lowercase + string.digits + "_", min_size=1, max_size=12)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ident.map(lambda s: "k" + s), inner, max_size=3),
    max_leaves=8,
)
extras = st.dictionaries(ident.map(lambda s: "x_" + s), json_value, max_size=3)
i18n = st.fixed_dictionaries({"en_US": text}, optional={"zh_Hans": text, "ja_JP": text, "pt_BR": text})


def with_extras(base: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.tuples(base, extras).map(lambda pair: {**pair[1], **pair[0]})


parameter = with_extras(
    st.fixed_dictionaries(
        {
            "name": ident,
            "label": i18n,
            "type": st.sampled_from(["string", "number", "boolean", "file", "files"]),
            "form": st.sampled_from(["llm", "form", "schema"]),
        },
        optional={
            "required": st.booleans(),
            "llm_description": text,
            "human_description": i18n,
            "default": st.integers(0, 9),
            "multiple": st.booleans(),
        },
    )
)
tool = with_extras(
    st.fixed_dictionaries(
        {
            "identity": with_extras(st.fixed_dictionaries({"name": ident, "author": ident, "label": i18n})),
            "description": st.fixed_dictionaries({"human": i18n, "llm": text}),
        },
        optional={
            "parameters": st.lists(parameter, max_size=4, unique_by=lambda p: p["name"]),
            "has_runtime_parameters": st.booleans(),
            "output_schema": st.just({"type": "object", "properties": {"x": {"type": "string"}}}),
            "extra": st.fixed_dictionaries({"python": st.fixed_dictionaries({"source": st.just("tools/t.py")})}),
        },
    )
)
version = st.tuples(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99)).map(lambda v: f"{v[0]}.{v[1]}.{v[2]}")
manifest = with_extras(
    st.fixed_dictionaries(
        {
            "version": version,
            "type": st.just("plugin"),
            "author": ident,
            "name": ident,
            "label": i18n,
            "description": i18n,
            "icon": st.just("icon.svg"),
            "resource": st.fixed_dictionaries(
                {"memory": st.integers(1, 2**31)},
                optional={
                    "permission": st.fixed_dictionaries(
                        {},
                        optional={
                            "tool": st.fixed_dictionaries({"enabled": st.booleans()}),
                            "model": st.fixed_dictionaries({"enabled": st.booleans(), "llm": st.booleans()}),
                            "storage": st.fixed_dictionaries(
                                {"enabled": st.just(True), "size": st.integers(1024, 2**30)}
                            ),
                        },
                    )
                },
            ),
            "plugins": st.fixed_dictionaries({"tools": st.just(["provider/p.yaml"])}),
            "meta": st.fixed_dictionaries(
                {
                    "version": version,
                    "arch": st.just(["amd64"]),
                    "runner": st.fixed_dictionaries(
                        {
                            "language": st.just("python"),
                            "version": st.sampled_from(["3.11", "3.12"]),
                            "entrypoint": st.just("main"),
                        }
                    ),
                }
            ),
            "created_at": st.just("2024-07-12T08:03:44.658609186Z"),
        },
        optional={"tags": st.lists(st.sampled_from(["search", "rag", "agent"]), max_size=2), "privacy": text},
    )
)
model = with_extras(
    st.fixed_dictionaries(
        {"model": ident, "model_type": st.sampled_from(["llm", "text-embedding", "rerank"])},
        optional={
            "label": i18n,
            "features": st.lists(ident, max_size=3),
            "model_properties": st.dictionaries(ident, st.integers(0, 10**6) | ident, max_size=3),
            "parameter_rules": st.lists(
                st.one_of(
                    st.fixed_dictionaries({"name": ident, "use_template": st.sampled_from(["temperature", "top_p"])}),
                    st.fixed_dictionaries(
                        {"name": ident, "type": st.sampled_from(["int", "string"])},
                        optional={"label": i18n, "required": st.booleans()},
                    ),
                ),
                max_size=3,
                unique_by=lambda r: r["name"],
            ),
            "deprecated": st.booleans(),
        },
    )
)


class _QuotingDumper(yaml.SafeDumper):
    """PyYAML writes YAML 1.1, where ``08`` is text; quote every string so a YAML 1.2 reader agrees."""


_QuotingDumper.add_representer(str, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style='"'))


def round_trip(cls: type, data: dict[str, Any]) -> Any:
    doc = load_yaml(yaml.dump(data, Dumper=_QuotingDumper, allow_unicode=True, sort_keys=False), "x.yaml")
    assert not doc.problems
    loaded, problems = validate_document(cls, doc)
    assert loaded is not None, [str(p) for p in problems]
    return loaded.to_data()


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(tool)
def test_tool_round_trip_loses_nothing(data: dict[str, Any]) -> None:
    assert round_trip(ToolDeclaration, data) == data


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(manifest)
def test_manifest_round_trip_loses_nothing(data: dict[str, Any]) -> None:
    assert round_trip(PluginManifest, data) == data


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(model)
def test_model_round_trip_loses_nothing(data: dict[str, Any]) -> None:
    assert round_trip(ModelDeclaration, data) == data


files = st.lists(
    st.tuples(
        st.text(alphabet=string.ascii_lowercase + "/_.", min_size=1, max_size=12).filter(
            lambda n: (
                not n.startswith("/")
                and "//" not in n
                and not n.endswith("/")
                and ".." not in n.split("/")
                and "." not in n.split("/")
            )
        ),
        st.binary(max_size=200),
    ),
    max_size=8,
    unique_by=lambda f: f[0],
).map(lambda fs: [("manifest.yaml", b"x: 1\n"), *[f for f in fs if f[0] != "manifest.yaml"]])


@settings(max_examples=60)
@given(files)
def test_packaging_is_deterministic(entries: list[tuple[str, bytes]]) -> None:
    assert write_zip(entries) == write_zip(list(entries))
    archive = PackageArchive.open(write_zip(entries))
    assert archive.read_all() == entries
    assert package_checksum(entries) == package_checksum(list(reversed(entries)))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300), st.sampled_from(sorted(KINDS)))
def test_loader_never_crashes_on_arbitrary_text(source: str, kind: str) -> None:
    doc = load_yaml(source, "fuzz.yaml")
    if not any(p.is_error for p in doc.problems) and isinstance(doc.data, dict):
        validate_document(KINDS[kind], doc)


class _MemorySource:
    name = "memory"

    def __init__(self, files: dict[str, bytes]) -> None:
        self._files = files

    def read(self, path: str) -> bytes | None:
        return self._files.get(path)

    def files(self) -> list[str]:
        return sorted(self._files)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["manifest.yaml", "provider/p.yaml", "tools/t.yaml", "main.py"]),
        st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
        min_size=1,
    )
)
def test_plugin_loader_never_crashes(files: dict[str, bytes]) -> None:
    result = load_plugin(_MemorySource(files))
    assert isinstance(result.problems, list)
