"""Validate a bundle folder or package: its manifest, icon and the packages it carries."""

from __future__ import annotations

from plugdock.schema.bundle import BundleManifest, PackageDependency
from plugdock.schema.plugin import FileSource, is_safe_relative
from plugdock.schema.problems import Problem
from plugdock.schema.validation import validate_document
from plugdock.schema.yaml_source import load_yaml


def load_bundle(source: FileSource) -> tuple[BundleManifest | None, list[Problem]]:
    data = source.read("manifest.yaml")
    if data is None:
        return None, [Problem(source.name, None, None, "", "manifest.yaml is missing")]
    doc = load_yaml(data, "manifest.yaml")
    if any(p.is_error for p in doc.problems):
        return None, doc.problems
    bundle, problems = validate_document(BundleManifest, doc)
    problems = doc.problems + problems
    if bundle is None:
        return None, problems
    files = set(source.files())
    if f"_assets/{bundle.icon}" not in files:
        problems.append(doc.problem(("icon",), f"icon {bundle.icon!r} is not in _assets/"))
    for index, dep in enumerate(bundle.dependencies):
        if isinstance(dep, PackageDependency):
            path = dep.value.path
            where = ("dependencies", index, "value", "path")
            if not is_safe_relative(path):
                problems.append(doc.problem(where, f"package path {path!r} must be relative, without '..'"))
            elif path not in files and f"_assets/{path}" not in files:
                problems.append(doc.problem(where, f"package {path!r} is not in the bundle"))
    return bundle, problems
