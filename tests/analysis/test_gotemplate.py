"""Go's text/template semantics: a table of templates and the output Go gives for them (from the
package documentation and its exec tests), properties that must hold for any input, and errors
as Go words them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coalmine.analysis.gotemplate import TemplateError, go_sprintf, render
from coalmine.analysis.gotemplate.fmt import go_quote

FUNCTIONS: dict[str, Any] = {
    "namespace": lambda: "test",
    "target": lambda: "podinfo",
    "interval": lambda: "1m",
    "variables": lambda: {"direction": "inbound", "reporter": "destination", "empty": ""},
    "zero": lambda: 0,
    "items": lambda: ["a", "b", "c"],
    "none": lambda: [],
}

# (template, Go's output). Data (dot) is nil, as in Flagger.
GO_TABLE: list[tuple[str, str]] = [
    # text, comments, trim markers
    ("plain text", "plain text"),
    ("a{{/* comment */}}b", "ab"),
    ("a {{- /* comment */ -}} b", "ab"),
    ("{{23 -}} < {{- 45}}", "23<45"),  # the package doc's example
    ("{{- 3 }}", "3"),
    ("{{-3}}", "-3"),  # no space after `-`: a negative number, not a trim marker
    ("a\n  {{- target }}\n  b", "apodinfo\n  b"),
    # literals and printing
    ('{{ "quoted\\tstring" }}', "quoted\tstring"),
    ("{{ `raw\\t` }}", "raw\\t"),
    ("{{ 1e3 }} {{ 1.5 }} {{ 0x1F }} {{ 0o17 }} {{ 1_000 }}", "1000 1.5 31 15 1000"),
    ("{{ 'a' }}", "97"),
    ("{{ true }} {{ false }}", "true false"),
    ("{{ . }}", "<no value>"),
    ("{{ variables }}", "map[direction:inbound empty: reporter:destination]"),
    ("{{ items }}", "[a b c]"),
    # pipelines and parentheses
    ('{{ target | printf "%s-canary" }}', "podinfo-canary"),
    ('{{ "x" | printf "%s%s" "y" }}', "yx"),
    ('{{ printf "%s/%s" (namespace) target }}', "test/podinfo"),
    ('{{ (printf "%d" 3) | len }}', "1"),
    ("{{ variables.direction }}", "inbound"),
    ("{{ (variables).reporter }}", "destination"),
    # variables
    ("{{ $x := 1 }}{{ $x }}", "1"),
    ("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", "2"),
    (
        '{{ $x := "outer" }}{{ if true }}{{ $x := "inner" }}{{ $x }}{{ end }} {{ $x }}',
        "inner outer",
    ),
    ("{{ $v := variables }}{{ $v.reporter }}", "destination"),
    ("{{ $ }}", "<no value>"),
    # if / else if / else
    ("{{ if true }}T{{ end }}", "T"),
    ("{{ if false }}T{{ else }}F{{ end }}", "F"),
    ("{{ if zero }}T{{ else if eq 1 1 }}E{{ else }}F{{ end }}", "E"),
    ('{{ if "" }}T{{ else }}empty string is false{{ end }}', "empty string is false"),
    ("{{ if none }}T{{ else }}empty list is false{{ end }}", "empty list is false"),
    ("{{ if variables }}non-empty map is true{{ end }}", "non-empty map is true"),
    ("{{ if $x := 3 }}{{ $x }}{{ end }}", "3"),
    # with
    ("{{ with variables }}{{ .direction }}{{ end }}", "inbound"),
    ('{{ with "" }}T{{ else }}E{{ end }}', "E"),
    ("{{ with $x := target }}{{ $x }}={{ . }}{{ end }}", "podinfo=podinfo"),
    ('{{ with zero }}T{{ else with "w" }}{{ . }}{{ end }}', "w"),
    # range
    ("{{ range items }}{{ . }}{{ end }}", "abc"),
    ("{{ range $i, $e := items }}{{ $i }}{{ $e }},{{ end }}", "0a,1b,2c,"),
    ("{{ range $e := items }}{{ $e }}{{ end }}", "abc"),
    (
        "{{ range $k, $v := variables }}{{ $k }}={{ $v }};{{ end }}",
        "direction=inbound;empty=;reporter=destination;",
    ),
    ("{{ range none }}x{{ else }}empty{{ end }}", "empty"),
    ("{{ range 3 }}{{ . }}{{ end }}", "012"),
    ('{{ range items }}{{ if eq . "b" }}{{ continue }}{{ end }}{{ . }}{{ end }}', "ac"),
    ('{{ range items }}{{ if eq . "b" }}{{ break }}{{ end }}{{ . }}{{ end }}', "a"),
    ("{{ range $i, $e := items }}{{ end }}{{ $i := 9 }}{{ $i }}", "9"),
    # comparison and logic
    ("{{ eq 1 1 }} {{ eq 1 2 }} {{ eq 1 2 3 1 }}", "true false true"),
    ('{{ eq "a" "a" }} {{ ne "a" "b" }}', "true true"),
    ("{{ lt 1 2 }} {{ le 2 2 }} {{ gt 1 2 }} {{ ge 2 3 }}", "true true false false"),
    ('{{ lt "a" "b" }} {{ lt 1.5 2.5 }}', "true true"),
    ('{{ and 1 0 2 }} {{ and 1 2 }} {{ or 0 "" 3 }} {{ or 0 "" }}', "0 2 3 "),
    ('{{ not 0 }} {{ not 1 }} {{ not "" }}', "true false true"),
    ("{{ and false (index nil 1) }}", "false"),  # and stops before the failing argument
    ("{{ or true (index nil 1) }}", "true"),
    # len, index, slice
    ('{{ len "héllo" }} {{ len items }} {{ len variables }}', "6 3 3"),
    ('{{ index variables "reporter" }}', "destination"),
    ('{{ index variables "missing" | printf "%q" }}', '""'),
    ("{{ index items 1 }}", "b"),
    ('{{ index "abc" 1 }}', "98"),
    ('{{ slice "abcdef" 1 3 }} {{ slice "abc" 1 }} {{ slice items 1 }}', "bc bc [b c]"),
    # print, println, printf
    ('{{ print "a" "b" 1 2 "c" }}', "ab1 2c"),
    ('{{ println "a" 1 }}', "a 1\n"),
    ('{{ printf "%s %d %v %q %f" "s" 42 1.5 "q" 2.5 }}', 's 42 1.5 "q" 2.500000'),
    (
        '{{ printf "%5.2f|%-4s|%04d|%x|%X|%o|%b" 3.14159 "ab" 42 255 255 8 5 }}',
        " 3.14|ab  |0042|ff|FF|10|101",
    ),
    ('{{ printf "%t %v %T %T %T" true nil 1 1.0 "s" }}', "true <nil> int float64 string"),
    ('{{ printf "%d" "x" }}', "%!d(string=x)"),
    ('{{ printf "%s" 1 }}', "%!s(int=1)"),
    ('{{ printf "%d" }}', "%!d(MISSING)"),
    ('{{ printf "%d" 1 2 }}', "1%!(EXTRA int=2)"),
    ('{{ printf "%[2]s %[1]s" "a" "b" }}', "b a"),
    ('{{ printf "%q" "tab\\there" }}', '"tab\\there"'),
    ('{{ printf "%v" variables }}', "map[direction:inbound empty: reporter:destination]"),
    ('{{ printf "%%" }}', "%"),
    # escaping functions
    ("{{ html \"<a href='x'>&</a>\" }}", "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"),
    ('{{ urlquery "a b&c=d" }}', "a+b%26c%3Dd"),
    ('{{ js "it\'s <b>" }}', "it\\'s \\u003Cb\\u003E"),
    # define, template, block
    ('{{ define "T" }}[{{ . }}]{{ end }}{{ template "T" target }}', "[podinfo]"),
    ('{{ block "B" namespace }}<{{ . }}>{{ end }}', "<test>"),
]


@pytest.mark.parametrize(("source", "expected"), GO_TABLE)
def test_templates_render_as_go_renders_them(source: str, expected: str) -> None:
    assert render(source, FUNCTIONS, "t") == expected


# (template, Go's error text).
GO_ERRORS: list[tuple[str, str]] = [
    ("{{ nope }}", 'template: t:1:3: function "nope" not defined'),
    ("{{ $x }}", 'template: t:1:3: undefined variable "$x"'),
    ("{{ if true }}x", "template: t:1:14: unexpected EOF in if"),
    ("{{ end }}", "template: t:1:3: unexpected {{end}}"),
    ("{{ else }}", "template: t:1:3: unexpected {{else}}"),
    ("{{ break }}", "template: t:1:3: {{break}} outside {{range}}"),
    ("a\n\n  {{ (target }}", "template: t:3:6: unclosed left paren"),
    (
        '{{ eq 1 "a" }}',
        'template: t:1:3: executing "t" at <eq>: error calling eq: incompatible types for comparison',
    ),
    (
        "{{ lt true false }}",
        'template: t:1:3: executing "t" at <lt>: error calling lt: invalid type for comparison',
    ),
    (
        "{{ index items 5 }}",
        'template: t:1:3: executing "t" at <index>: error calling index: index out of range: 5',
    ),
    (
        "{{ len 3 }}",
        'template: t:1:3: executing "t" at <len>: error calling len: len of type int',
    ),
    (
        "{{ target 1 }}",
        'template: t:1:3: executing "t" at <target>: wrong number of args for target: want 0 got 1',
    ),
    (
        "{{ range $i, $e := 3 }}{{ end }}",
        'template: t:1:3: executing "t" at <{{range $i, $e := 3}}>: '
        "can't use 3 to iterate over more than one variable",
    ),
    (
        '{{ range "abc" }}{{ end }}',
        'template: t:1:3: executing "t" at <{{range "abc"}}>: range can\'t iterate over abc',
    ),
    ("{{ nil }}", 'template: t:1:3: executing "t" at <nil>: nil is not a command'),
    ("{{ if nil }}{{ end }}", 'template: t:1:6: executing "t" at <nil>: nil is not a command'),
    ("{{ 1 | 2 }}", "template: t:1:3: non executable command in pipeline stage 2"),
    (
        '{{ template "missing" }}',
        'template: t:1:3: executing "t" at <{{template "missing"}}>: no such template "missing"',
    ),
    (
        "{{ target.x }}",
        'template: t:1:3: executing "t" at <target.x>: can\'t evaluate field x in type string',
    ),
]


@pytest.mark.parametrize(("source", "expected"), GO_ERRORS)
def test_errors_name_the_template_line_and_column_as_go(source: str, expected: str) -> None:
    with pytest.raises(TemplateError) as raised:
        render(source, FUNCTIONS, "t")
    assert str(raised.value) == expected


# --- properties

text_without_actions = st.text().filter(lambda text: "{{" not in text)


@given(text_without_actions)
def test_text_without_actions_is_copied_unchanged(text: str) -> None:
    assert render(text, {}, "t") == text


@given(st.text())
def test_a_quoted_string_literal_prints_its_value(text: str) -> None:
    assert render("{{ " + go_quote(text) + " }}", {}, "t") == text


@given(st.integers(min_value=-(2**62), max_value=2**62))
def test_integers_print_and_format_in_decimal(number: int) -> None:
    assert render(f"{{{{ {number} }}}}", {}, "t") == str(number)
    assert render(f'{{{{ printf "%d" {number} }}}}', {}, "t") == str(number)


@given(st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_comparisons_agree_with_integer_order(a: int, b: int) -> None:
    source = f"{{{{ lt {a} {b} }}}} {{{{ le {a} {b} }}}} {{{{ eq {a} {b} }}}} {{{{ ne {a} {b} }}}}"
    expected = " ".join(str(v).lower() for v in (a < b, a <= b, a == b, a != b))
    assert render(source, {}, "t") == expected


@given(st.text(alphabet="ab \n\t", max_size=6), st.text(alphabet="ab \n\t", max_size=6))
def test_trim_markers_remove_all_adjacent_whitespace(before: str, after: str) -> None:
    rendered = render(before + "{{- 1 -}}" + after, {}, "t")
    assert rendered == before.rstrip(" \t\r\n") + "1" + after.lstrip(" \t\r\n")


@given(st.lists(st.sampled_from(["a", "b", "c"]), max_size=5))
def test_range_visits_each_element_in_order(items: list[str]) -> None:
    functions = {"items": lambda: items}
    assert render(
        "{{ range $i, $e := items }}{{ $i }}{{ $e }}{{ end }}", functions, "t"
    ) == "".join(f"{i}{e}" for i, e in enumerate(items))


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300))
def test_printf_v_of_a_float_reads_back_as_the_same_float(value: float) -> None:
    assert float(go_sprintf("%v", value)) == value
