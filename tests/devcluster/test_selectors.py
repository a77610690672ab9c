"""Label and field selectors: syntax, matching, validation messages, and generated round trips."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coalmine.devcluster.selectors import (
    LabelSelector,
    Requirement,
    SelectorError,
    label_selector_from_object,
    label_value_problems,
    parse_field_selector,
    parse_label_selector,
    qualified_name_problems,
)

LABELS = {"app": "podinfo", "tier": "web", "version": "3", "example.com/role": "canary"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("app=podinfo", True),
        ("app==podinfo", True),
        ("app = podinfo", True),
        ("app!=podinfo", False),
        ("app!=other", True),
        ("missing!=x", True),
        ("app in (podinfo, other)", True),
        ("app in (other)", False),
        ("app notin (other,another)", True),
        ("app notin (podinfo)", False),
        ("missing notin (x)", True),
        ("tier", True),
        ("missing", False),
        ("!missing", True),
        ("!tier", False),
        ("app=podinfo,tier=web", True),
        ("app=podinfo, tier=api", False),
        ("  app=podinfo ,  !missing ,example.com/role in (canary)  ", True),
        ("version>2", True),
        ("version<3", False),
        ("app>2", False),
        ("empty=", False),
    ],
)
def test_label_selector_syntax_and_matching(text: str, expected: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is expected


def test_empty_value_matches_an_empty_label() -> None:
    assert parse_label_selector("empty=").matches({"empty": ""})
    assert parse_label_selector("empty in (a,)").matches({"empty": ""})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("app in podinfo", "expected: '('"),
        ("app in (a", "expected: ')'"),
        ("app in ()", "values set can't be empty"),
        ("app=a b", "expected: ',' or 'end of string'"),
        ("app=podinfo,", "after ','"),
        ("=podinfo", "found '=', expected: identifier"),
        ("bad key!=x", "expected: in, notin"),
        ("-bad=x", 'key: Invalid value: "-bad": name part must consist of alphanumeric'),
        ("Example.com/x=y", 'Invalid value: "Example.com/x": prefix part a lowercase RFC 1123'),
        ("a/b/c=y", "qualified name"),
        ("app=-bad-", 'values[0][app]: Invalid value: "-bad-": a valid label must be'),
        ("app=" + "x" * 64, "must be no more than 63 characters"),
        ("k" * 64 + "=x", "name part must be no more than 63 characters"),
        ("version>abc", "must be an integer"),
    ],
)
def test_invalid_label_selectors_are_rejected_with_kubernetes_words(
    text: str, fragment: str
) -> None:
    with pytest.raises(SelectorError) as raised:
        parse_label_selector(text)
    assert fragment in raised.value.message


def test_label_selector_object_with_match_labels_and_expressions() -> None:
    selector = label_selector_from_object(
        {
            "matchLabels": {"app": "podinfo"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "api"]},
                {"key": "track", "operator": "NotIn", "values": ["stable"]},
                {"key": "version", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector.matches(LABELS)
    assert not selector.matches({**LABELS, "legacy": "yes"})
    assert not selector.matches({**LABELS, "tier": "db"})
    assert not selector.matches({"app": "podinfo"})


@pytest.mark.parametrize("empty", [None, {}, {"matchLabels": {}}, {"matchExpressions": []}])
def test_empty_label_selector_object_matches_everything(empty: Any) -> None:
    assert label_selector_from_object(empty).matches({})
    assert label_selector_from_object(empty).matches(LABELS)


@pytest.mark.parametrize(
    ("selector", "fragment"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
            "not a valid",
        ),
        ({"matchExpressions": [{"key": "a", "operator": "In"}]}, "can't be empty"),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            "must be empty",
        ),
        ({"matchLabels": {"a": 1}}, "must be a string"),
        ({"matchLabels": {"a b": "x"}}, "key: Invalid value"),
    ],
)
def test_invalid_label_selector_objects(selector: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SelectorError, match=fragment):
        label_selector_from_object(selector)


POD = {
    "metadata": {"name": "podinfo-1", "namespace": "test"},
    "spec": {"nodeName": "node-1", "replicas": 3, "paused": False},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("metadata.name=podinfo-1", True),
        ("metadata.name==podinfo-1", True),
        ("metadata.name!=podinfo-1", False),
        ("metadata.namespace=test,status.phase=Running", True),
        ("metadata.namespace=test,status.phase!=Running", False),
        ("spec.missing=", True),
        ("spec.missing!=", False),
        ("spec.replicas=3", True),
        ("spec.paused=false", True),
        ("spec.nodeName=node-2", False),
    ],
)
def test_field_selector_matching(text: str, expected: bool) -> None:
    assert parse_field_selector(text).matches(POD) is expected


def test_field_selector_escapes() -> None:
    selector = parse_field_selector(r"metadata.name=a\,b\=c\\d")
    assert selector.matches({"metadata": {"name": "a,b=c\\d"}})
    assert str(selector) == r"metadata.name=a\,b\=c\\d"


@pytest.mark.parametrize("text", ["metadata.name", "=x", r"metadata.name=a\q", "a=b=c"])
def test_invalid_field_selectors(text: str) -> None:
    with pytest.raises(SelectorError, match="invalid"):
        parse_field_selector(text)


KEY_NAMES = st.from_regex(r"\A[a-z0-9]([a-z0-9._-]{0,8}[a-z0-9])?\Z")
KEYS = st.one_of(
    KEY_NAMES, st.builds(lambda p, n: f"{p}.io/{n}", st.from_regex(r"\A[a-z]{1,5}\Z"), KEY_NAMES)
)
VALUES = st.from_regex(r"\A([A-Za-z0-9]([A-Za-z0-9._-]{0,6}[A-Za-z0-9])?)?\Z")
REQUIREMENTS = st.one_of(
    st.builds(lambda k, v: Requirement(k, "=", (v,)), KEYS, VALUES),
    st.builds(lambda k, v: Requirement(k, "!=", (v,)), KEYS, VALUES),
    st.builds(
        lambda k, vs: Requirement(k, "in", tuple(sorted(set(vs)))),
        KEYS,
        st.lists(VALUES.filter(bool), min_size=1, max_size=3),
    ),
    st.builds(
        lambda k, vs: Requirement(k, "notin", tuple(sorted(set(vs)))),
        KEYS,
        st.lists(VALUES.filter(bool), min_size=1, max_size=3),
    ),
    st.builds(lambda k: Requirement(k, "exists"), KEYS),
    st.builds(lambda k: Requirement(k, "!"), KEYS),
)


@given(st.lists(REQUIREMENTS, max_size=4), st.dictionaries(KEYS, VALUES, max_size=4))
def test_generated_selectors_round_trip_and_match_like_their_requirements(
    requirements: list[Requirement], labels: dict[str, str]
) -> None:
    selector = LabelSelector(tuple(requirements))
    parsed = parse_label_selector(str(selector))
    assert parsed == selector
    assert parsed.matches(labels) == all(r.matches(labels) for r in requirements)
    spaced = parse_label_selector(" , ".join(str(r).replace("(", " ( ") for r in requirements))
    assert spaced == selector


@given(st.text(alphabet="ab=!,() inotx/.-_\\", max_size=30))
def test_any_text_parses_or_raises_selector_error(text: str) -> None:
    for parse in (parse_label_selector, parse_field_selector):
        try:
            parse(text)
        except SelectorError as error:
            assert error.message  # noqa: PT017 - the message is the behaviour under test


def test_key_and_value_checks_are_public_for_object_meta_validation() -> None:
    assert qualified_name_problems("app.kubernetes.io/name") == []
    assert qualified_name_problems("bad key") != []
    assert qualified_name_problems("Example.com/x")[0].startswith("prefix part")
    assert label_value_problems("") == []
    assert label_value_problems("v1.2_3-x") == []
    assert label_value_problems("-x") != []
    assert label_value_problems("x" * 64) == ["must be no more than 63 characters"]
