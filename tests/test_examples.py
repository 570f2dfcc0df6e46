"""Every example plugin validates, packages deterministically, and verifies once signed."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from plugdock.packaging.archive import ArchiveSource, PackageArchive
from plugdock.packaging.build import build_package
from plugdock.packaging.ignore import ignore_filter
from plugdock.packaging.signature import sign_package, verify_package
from plugdock.schema.bundle_loader import load_bundle
from plugdock.schema.plugin import DirectorySource, load_plugin

EXAMPLES = sorted(p for p in (Path(__file__).parent.parent / "examples").iterdir() if p.is_dir())
PLUGINS = [p for p in EXAMPLES if "type: bundle" not in (p / "manifest.yaml").read_text()]


def test_there_is_an_example_of_every_kind() -> None:
    kinds = set()
    for root in PLUGINS:
        manifest = load_plugin(DirectorySource(root)).manifest
        assert manifest is not None
        kinds.add(manifest.category)
    assert {"tool", "model", "extension", "agent-strategy", "trigger", "datasource"} <= kinds
    assert len(EXAMPLES) == len(PLUGINS) + 1  # and one bundle


@pytest.mark.parametrize("root", PLUGINS, ids=[p.name for p in PLUGINS])
def test_example_validates_packages_and_verifies(root: Path) -> None:
    plugin = load_plugin(DirectorySource(root, exclude=ignore_filter(root)))
    assert plugin.problems == []
    built = build_package(root)
    assert build_package(root).data == built.data
    packaged = load_plugin(ArchiveSource(PackageArchive.open(built.data)))
    assert packaged.problems == []
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    verify_package(PackageArchive.open(sign_package(built.data, key)), [key.public_key()])


def test_bundle_example_validates() -> None:
    (bundle,) = [p for p in EXAMPLES if p not in PLUGINS]
    manifest, problems = load_bundle(DirectorySource(bundle))
    assert manifest is not None and problems == []
