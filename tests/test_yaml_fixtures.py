"""Every hand-written fixture under fixtures/yaml validates to exactly the problems it lists.

Each file names its kind on the first line (``# kind: tool``) and ends with ``# expect:`` lines
(``line:column: field: message``, or ``valid``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from plugdock.schema import KINDS
from plugdock.schema.validation import validate_document
from plugdock.schema.yaml_source import load_yaml

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "yaml").glob("*.yaml"))


def test_corpus_is_large_and_mixed() -> None:
    valid = [f for f in FIXTURES if "# expect: valid" in f.read_text()]
    assert len(FIXTURES) >= 30
    assert len(valid) >= 8
    assert len(FIXTURES) - len(valid) >= 25
    kinds = {re.match(r"# kind: (\S+)", f.read_text()).group(1) for f in FIXTURES}  # type: ignore[union-attr]
    assert kinds == set(KINDS)


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_fixture(fixture: Path) -> None:
    text = fixture.read_text()
    kind = re.match(r"# kind: (\S+)", text).group(1)  # type: ignore[union-attr]
    expected = re.findall(r"^# expect: (.*)$", text, flags=re.M)
    doc = load_yaml(text, fixture.name)
    problems = list(doc.problems)
    if not any(p.is_error for p in problems):
        _, found = validate_document(KINDS[kind], doc)
        problems += found
    actual = [str(p)[len(fixture.name) + 1 :] for p in problems] or ["valid"]
    assert actual == expected
