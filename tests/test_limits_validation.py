"""Pydantic errors turned into ``file:line:column: field: message`` at their edges: first and last list items,
union branches, collapsed type mismatches, what a wrong value is called (YAML's ints and floats too), message
wording, and typo warnings at the similarity cutoff."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from plugdock.schema.validation import _clean_loc, _message, _yaml_type, validate_document
from plugdock.schema.yaml_source import load_yaml


class Inner(BaseModel):
    model_config = ConfigDict(extra="allow")
    label: str
    count: int = 0


class Outer(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(pattern=r"^[a-z]+$")
    value: str | int = "x"
    ratio: float = 0.0
    items: list[Inner] = []
    mapping: dict[str, Inner] = {}
    kind: Literal["a", "b"] = "a"
    flag: bool = False
    inner: Inner | None = None


def problems(text: str, prefix: tuple[str | int, ...] = ()) -> list[str]:
    model, found = validate_document(Outer, load_yaml(text, "f.yaml"), prefix)
    assert (model is None) == any(p.severity == "error" for p in found)
    return [str(p) for p in found]


# -- where: the path the author wrote, at the first and the last item ---------------------------------------

def test_the_first_and_the_last_list_items_are_named_by_index() -> None:
    text = "name: ok\nitems:\n  - {labl: a}\n  - {label: b}\n  - {labl: c}\n"
    assert problems(text) == ["f.yaml:3:5: items[0].label: required field is missing",
                              "f.yaml:5:5: items[2].label: required field is missing"]


def test_a_wrong_value_in_a_mapping_of_models_is_named_by_its_key() -> None:
    assert problems("name: ok\nmapping:\n  k1: {label: [x]}\n") == [
        "f.yaml:3:15: mapping.k1.label: expected a string, got a list"]


def test_clean_loc_keeps_written_keys_and_indexes_and_drops_branch_tags() -> None:
    data = {"items": [{"a": 1}, {"b": 2}], "x": {}}
    assert _clean_loc(("items", 0, "a"), data) == ("items", 0, "a")
    assert _clean_loc(("items", 1, "b"), data) == ("items", 1, "b")
    assert _clean_loc(("items", 2, "label"), data) == ("items", 2, "label")  # past the end: kept, to be named
    assert _clean_loc(("items", -1), data) == ("items", -1)
    given = {"value": [1]}
    assert _clean_loc(("value", "str"), given) == ("value",)  # the last part, a branch tag: dropped
    assert _clean_loc(("value", "list[int]"), given) == ("value",)
    assert _clean_loc(("value", "Inner"), given) == ("value",)
    assert _clean_loc(("value", "label"), given) == ("value", "label")  # a lower-case last part: a missing key
    assert _clean_loc(("absent", "label"), {}) == ("label",)  # not written and not last: a branch tag
    assert _clean_loc(("x", "function-after[check()]", "y"), data) == ("x", "y")
    assert _clean_loc(("x", "missing_key"), data) == ("x", "missing_key")  # a key the author left out


# -- what: type mismatches, collapsed at a union --------------------------------------------------------

def test_a_value_fitting_no_union_branch_lists_every_branch_once() -> None:
    assert problems("name: ok\nvalue: [1]\n") == ["f.yaml:2:8: value: expected a string or an integer, got a list"]


def test_a_union_branch_that_got_further_wins_over_the_type_mismatch() -> None:
    assert problems("name: ok\ninner: {count: 1}\n") == ["f.yaml:2:8: inner.label: required field is missing"]


@pytest.mark.parametrize(("value", "said"), [
    ("5", "an integer"), ("5.5", "a number"), ("true", "a boolean"), ("[1]", "a list"), ("null", "nothing (null)"),
    ("abc", "a string"),
])
def test_what_a_wrong_value_is_called_in_yaml_words(value: str, said: str) -> None:
    """YAML's ints and floats are ``YamlInt``/``YamlFloat``: they read as numbers, not as class names."""
    assert problems(f"name: ok\nitems: [{value}]\n") == [f"f.yaml:2:9: items[0]: expected a mapping, got {said}"]


def test_yaml_type_by_value() -> None:
    assert [_yaml_type(v) for v in (True, 1, 1.5, "s", {}, [], None, {1})] == [
        "a boolean", "an integer", "a number", "a string", "a mapping", "a list", "nothing (null)", "set"]


def test_the_type_names_of_single_mismatches() -> None:
    assert problems("name: ok\nflag: maybe\nratio: fast\nitems: {}\n") == [
        "f.yaml:3:8: ratio: expected a number, got a string",
        "f.yaml:4:8: items: expected a list, got a mapping",
        "f.yaml:2:7: flag: expected true or false, got a string",
    ]  # in the model's field order


# -- how it is said -------------------------------------------------------------------------------------

def test_missing_pattern_and_literal_messages() -> None:
    assert problems("value: 1\n") == ["f.yaml:1:1: name: required field is missing"]
    assert problems("name: Bad1\n") == ["f.yaml:1:7: name: 'Bad1' does not match the pattern ^[a-z]+$"]
    assert problems("name: ok\nkind: c\n") == ["f.yaml:2:7: kind: input should be 'a' or 'b'"]


def test_message_wording() -> None:
    assert _message({"type": "value_error", "msg": "Value error, Something is wrong"}) == "something is wrong"
    assert _message({"type": "value_error", "msg": "Value error, URL is wrong"}) == "URL is wrong"  # an acronym
    assert _message({"type": "x", "msg": "Input should be valid"}) == "input should be valid"
    assert _message({"type": "x", "msg": "A"}) == "A"
    assert _message({"type": "x", "msg": ""}) == ""
    assert _message({"type": "missing", "msg": "Field required"}) == "required field is missing"
    assert _message({"type": "int_type", "msg": "Input should be a valid integer", "input": "x"}) == (
        "expected an integer, got a string")


# -- the document itself, and parts of it ----------------------------------------------------------------

def test_a_document_that_is_not_a_mapping() -> None:
    assert problems("") == ["f.yaml:1:1: expected a mapping, got an empty file"]
    assert problems("- 1\n") == ["f.yaml:1:1: expected a mapping, got a list"]
    assert problems("7\n") == ["f.yaml:1:1: expected a mapping, got an integer"]


def test_a_part_that_is_not_a_mapping_is_named_by_its_path() -> None:
    text = "a:\n  b: null\nc: [1]\n"
    assert problems(text, ("a", "b")) == ["f.yaml:2:6: a.b: expected a mapping, got nothing (null)"]
    assert problems(text, ("c",)) == ["f.yaml:3:4: c: expected a mapping, got a list"]
    assert problems(text, ("a", "missing")) == ["f.yaml:2:3: a.missing: expected a mapping, got nothing (null)"]
    assert problems(text, ("c", 0)) == ["f.yaml:3:5: c[0]: expected a mapping, got an integer"]
    assert problems(text, ("c", 1)) == ["f.yaml:3:4: c[1]: expected a mapping, got nothing (null)"]


def test_errors_in_a_part_carry_the_full_path() -> None:
    assert problems("outer:\n  name: ok\n  items: [{label: [1]}]\n", ("outer",)) == [
        "f.yaml:3:19: outer.items[0].label: expected a string, got a list"]


# -- typo warnings at the cutoff ----------------------------------------------------------------------------

def test_a_close_unknown_key_is_a_warning_naming_the_field() -> None:
    assert problems("name: ok\nitem: []\n") == [
        "f.yaml:2:7: item: warning: unknown field (kept as is); did you mean 'items'?"]


def test_typos_are_found_in_nested_models_lists_and_mappings() -> None:
    text = "name: ok\ninner: {label: a, cout: 2}\nitems: [{label: a, cont: 1}]\nmapping: {k: {label: a, coun: 1}}\n"
    assert sorted(problems(text)) == [
        "f.yaml:2:25: inner.cout: warning: unknown field (kept as is); did you mean 'count'?",
        "f.yaml:3:26: items[0].cont: warning: unknown field (kept as is); did you mean 'count'?",
        "f.yaml:4:31: mapping.k.coun: warning: unknown field (kept as is); did you mean 'count'?",
    ]


def test_no_warning_when_the_close_field_is_also_given_or_nothing_is_close() -> None:
    assert problems("name: ok\nnmae: x\n") == []  # 'name' is there too: an extra field, not a typo
    assert problems("name: ok\nitem: []\nitems: []\n") == []
    assert problems("name: ok\nzebra: 1\nkd: 1\n") == []


def test_the_similarity_cutoff_is_0_8() -> None:
    """``kindly`` is exactly 0.8 like ``kind`` (2 x 4 / 10): a warning; ``kond`` is 0.75: none."""
    assert problems("name: ok\nkindly: a\n") == [
        "f.yaml:2:9: kindly: warning: unknown field (kept as is); did you mean 'kind'?"]
    assert problems("name: ok\nknd: a\n") == [
        "f.yaml:2:6: knd: warning: unknown field (kept as is); did you mean 'kind'?"]
    assert problems("name: ok\nkond: a\n") == []


def test_typos_in_a_part_carry_its_path() -> None:
    assert problems("outer:\n  name: ok\n  item: []\n", ("outer",)) == [
        "f.yaml:3:9: outer.item: warning: unknown field (kept as is); did you mean 'items'?"]


def test_extra_fields_do_not_stop_the_search_for_typos_below() -> None:
    """Unknown keys sit in ``model_fields_set`` beside the declared ones; each is skipped, not the end of the walk."""
    extras = "".join(f"x{n}: 1\n" for n in range(30))
    assert problems(f"name: ok\n{extras}inner: {{label: a, cout: 2}}\n") == [
        "f.yaml:32:25: inner.cout: warning: unknown field (kept as is); did you mean 'count'?"]
