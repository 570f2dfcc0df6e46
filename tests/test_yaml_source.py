"""YAML reading: positions, YAML 1.2 scalars (as Go's yaml.v3 reads them), and hostile input."""

from __future__ import annotations

from plugdock.schema.yaml_source import MAX_YAML_BYTES, load_yaml


def test_positions_are_recorded_for_every_value() -> None:
    doc = load_yaml("a: 1\nb:\n  - x\n  - {c: 2}\n", "f.yaml")
    assert doc.data == {"a": 1, "b": ["x", {"c": 2}]}
    assert (doc.positions[("a",)].line, doc.positions[("a",)].column) == (1, 4)
    assert doc.positions[("b", 1, "c")].line == 4
    assert doc.locate(("b", 1, "missing")).line == 4


def test_yaml_12_scalars() -> None:
    doc = load_yaml("a: yes\nb: 012\nc: 3.10\nd: 2024-01-01\ne: ~\nf: 0x1F\ng: .inf\nh: 'true'\ni: on\n", "f.yaml")
    assert doc.data == {
        "a": "yes",
        "b": 12,
        "c": 3.1,
        "d": "2024-01-01",
        "e": None,
        "f": 31,
        "g": float("inf"),
        "h": "true",
        "i": "on",
    }


def test_merge_keys_and_anchors() -> None:
    doc = load_yaml("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n", "f.yaml")
    assert doc.data["other"] == {"x": 1, "y": 3}


def test_duplicate_key_is_an_error_with_both_lines() -> None:
    doc = load_yaml("name: a\nother: 1\nname: b\n", "m.yaml")
    assert [str(p) for p in doc.problems] == ["m.yaml:3:1: duplicate key 'name' (first defined at line 1)"]


def test_syntax_error_has_a_position() -> None:
    doc = load_yaml("a: [1, 2\nb: 3\n", "m.yaml")
    assert doc.data is None
    assert doc.problems[0].line == 2
    assert "invalid YAML" in doc.problems[0].message


def test_alias_bomb_is_stopped() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]")
    doc = load_yaml("\n".join(lines) + "\n", "bomb.yaml")
    assert doc.data is None
    assert "YAML too large" in doc.problems[0].message


def test_oversized_and_binary_files() -> None:
    big = load_yaml(b"a: " + b"x" * (MAX_YAML_BYTES + 1), "big.yaml")
    assert "over the" in big.problems[0].message
    binary = load_yaml(b"a: \xff\xfe", "bin.yaml")
    assert "not valid UTF-8" in binary.problems[0].message


def test_non_scalar_keys_and_unknown_tags() -> None:
    doc = load_yaml("? [a, b]\n: 1\nc: !custom x\n", "k.yaml")
    messages = [p.message for p in doc.problems]
    assert "mapping keys must be plain scalars" in messages
    assert "unsupported YAML tag '!custom'" in messages


def test_empty_file() -> None:
    doc = load_yaml("", "empty.yaml")
    assert doc.data is None and not doc.problems
