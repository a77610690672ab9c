"""Reading manifest streams: positions of fields, and every unreadable input as a positioned error."""

from __future__ import annotations

import pytest

from coalmine.api.manifests import (
    MAX_DEPTH,
    Document,
    Position,
    YamlSyntaxError,
    decode,
    iter_documents,
    iter_located_documents,
)

STREAM = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo}
spec:
  analysis:
    stepWeights: [1, 20, 10]
    match:
      - headers:
          "x user": {exact: a}
---
kind: Second
"""


def documents(text: str) -> list[Document | YamlSyntaxError]:
    return list(iter_located_documents(text))


def first(text: str) -> Document:
    item = documents(text)[0]
    assert isinstance(item, Document)
    return item


def only_error(text: str) -> YamlSyntaxError:
    items = documents(text)
    errors = [item for item in items if isinstance(item, YamlSyntaxError)]
    assert len(errors) == 1, items
    return errors[0]


def test_a_path_maps_to_the_line_and_column_of_its_key_or_item() -> None:
    document = first(STREAM)
    assert document.position("spec.analysis.stepWeights[2]") == Position(6, 26)
    assert document.position("spec.analysis.stepWeights") == Position(6, 5)
    assert document.position('spec.analysis.match[0].headers["x user"].exact') == Position(9, 22)
    assert document.position("metadata.name") == Position(3, 12)


def test_a_missing_field_maps_to_its_nearest_parent() -> None:
    document = first(STREAM)
    assert document.position("spec.analysis.interval") == Position(5, 3)
    assert document.position("spec.analysis.stepWeights[9]") == Position(6, 5)
    assert document.position("document") == Position(1, 1)


def test_the_second_document_has_its_own_positions() -> None:
    second = documents(STREAM)[1]
    assert isinstance(second, Document)
    assert second.data == {"kind": "Second"}
    assert second.position("kind") == Position(11, 1)


def test_the_last_of_duplicate_keys_is_the_one_located() -> None:
    document = first("a: 1\na: 2\n")
    assert document.data == {"a": 2}
    assert document.position("a") == Position(2, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !!float x\n", "'x' is not a valid !!float"),
        ("a: !!int x\n", "'x' is not a valid !!int"),
        ("a: !!timestamp x\n", "'x' is not a valid !!timestamp"),
        ("a: !!bool x\n", "'x' is not a valid !!bool"),
        ("a: !!binary é\n", "failed to convert base64 data"),
        ("a: !!int " + "9" * 5000 + "\n", "is not a valid !!int"),
    ],
)
def test_a_value_its_tag_cannot_hold_is_an_error_at_the_value(text: str, message: str) -> None:
    error = only_error(text + "---\nb: 1\n")
    assert (error.line, error.column) == (1, 4)
    assert message in error.message
    assert not error.fatal
    assert list(iter_documents("b: 1\n---\nc: 2\n")) == [{"b": 1}, {"c": 2}]


def test_the_documents_after_a_bad_tag_are_still_read() -> None:
    items = documents("a: !!float x\n---\nb: 1\n")
    assert isinstance(items[0], YamlSyntaxError)
    assert isinstance(items[1], Document)
    assert items[1].data == {"b": 1}


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    error = only_error("\n".join(lines) + "\n")
    assert "excessive aliasing" in error.message


def test_a_recursive_alias_is_refused() -> None:
    error = only_error("a: &x [1, *x]\n")
    assert error.message == "an alias refers to itself"
    assert (error.line, error.column) == (1, 4)


def test_nesting_beyond_the_maximum_is_refused_with_a_position() -> None:
    text = "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    error = only_error(text)
    assert error.message == f"nested more than {MAX_DEPTH} levels deep"
    assert error.line == 1
    assert error.column > MAX_DEPTH
    assert isinstance(first("a: " + "[" * 50 + "]" * 50 + "\n"), Document)


def test_nesting_too_deep_for_the_parser_is_an_error_not_a_crash() -> None:
    error = only_error("a: " + "[" * 5000 + "]" * 5000)
    assert error.message == "nested too deeply"
    assert error.fatal


def test_bytes_that_are_not_utf8_are_placed_at_their_line_and_column() -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        decode(b"a: b\nc: d\xffe\n")
    assert (caught.value.line, caught.value.column) == (2, 5)
    assert caught.value.message == "not UTF-8 (byte ff)"


def test_utf16_with_a_byte_order_mark_is_read() -> None:
    assert decode("a: é\n".encode("utf-16")) == "a: é\n"
