"""The sandboxed template and expression evaluator (pure Python, no database)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from playbooks import expressions
from playbooks.expressions import (
    MAX_OUTPUT_BYTES,
    MAX_RANGE,
    ExpressionError,
    check_expression,
    check_template,
    evaluate_condition,
    referenced_steps,
    render_value,
    uses_item,
    uses_status_function,
)

CONTEXT: dict[str, Any] = {
    "inputs": {
        "host_id": "h-1",
        "hosts": ["web-1", "web-2", "db-1"],
        "count": 3,
        "labels": {"env": "prod"},
        "isolate": True,
        "note": None,
        "empty": [],
    },
    "steps": {
        "approve": {"outcome": "approved", "status": "succeeded", "output": {"by": "alice"}},
        "search": {"outcome": "succeeded", "output": {"items": [1, 2], "total": 2}},
        "skipped_one": {"outcome": "skipped", "output": None},
    },
    "run": {"id": 7, "playbook": "contain-host"},
}


def render(value: Any, path: str = "with.x") -> Any:
    return render_value(value, CONTEXT, path=path)


def render_error(value: Any, path: str = "with.x") -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        render(value, path)
    return info.value


# -- types --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ inputs.hosts }}", ["web-1", "web-2", "db-1"]),
        ("{{ inputs.count }}", 3),
        ("{{ inputs.labels }}", {"env": "prod"}),
        ("{{ inputs.isolate }}", True),
        ("{{ inputs.note }}", None),
        ("{{ inputs.count * 2 + 1 }}", 7),
        ("  {{ inputs.count }}\n", 3),
    ],
)
def test_a_single_expression_keeps_its_json_type(template: str, expected: Any) -> None:
    result = render(template)
    assert result == expected
    assert type(result) is type(expected)


def test_text_around_an_expression_renders_a_string() -> None:
    assert render("Host {{ inputs.host_id }} has {{ inputs.count }} peers") == (
        "Host h-1 has 3 peers"
    )
    assert render("{{ inputs.count }}{{ inputs.count }}") == "33"
    assert render("n={{ inputs.count }}") == "n=3"


def test_a_lazy_filter_result_becomes_a_list() -> None:
    assert render("{{ inputs.hosts|map('upper') }}") == ["WEB-1", "WEB-2", "DB-1"]
    assert render("{{ range(3) }}") == [0, 1, 2]


def test_strings_without_templates_and_other_json_values_are_returned_unchanged() -> None:
    assert render("plain {text}\n") == "plain {text}\n"
    assert render(42) == 42
    assert render(None) is None


def test_dicts_and_lists_are_rendered_recursively() -> None:
    value = {"device": "{{ inputs.host_id }}", "hosts": ["{{ inputs.hosts[0] }}", 5]}
    assert render(value) == {"device": "h-1", "hosts": ["web-1", 5]}


def test_a_dict_key_wins_over_a_dict_method_of_the_same_name() -> None:
    assert render("{{ steps.search.output.items }}") == [1, 2]


def test_tojson_renders_a_string_and_fromjson_parses_one() -> None:
    assert render("{{ inputs.labels|tojson }}") == '{"env": "prod"}'
    assert render("""{{ '{"a": [1]}'|fromjson }}""") == {"a": [1]}


def test_only_json_values_can_be_rendered() -> None:
    assert "cannot render a function" in render_error("{{ range }}").message


# -- errors and paths ----------------------------------------------------------------------


def test_an_error_deep_in_a_value_names_its_path() -> None:
    value = {"headers": {"X-Host": "{{ inputs.host_id }}"}, "hosts": ["a", "b", "{{ 1 / 0 }}"]}
    error = render_error(value, path="steps.isolate.with")
    assert error.path == "steps.isolate.with.hosts[2]"
    assert str(error) == "steps.isolate.with.hosts[2]: ZeroDivisionError: division by zero"


def test_an_error_without_a_path_is_just_its_message() -> None:
    assert str(ExpressionError("boom")) == "boom"
    assert str(ExpressionError("boom", path="a.b")) == "a.b: boom"


def test_an_undefined_variable_is_an_error_naming_it() -> None:
    error = render_error("{{ inputs.missing }}")
    assert error.message == "'missing' is undefined"
    assert "'nothing' is undefined" in render_error("Hi {{ nothing }}").message


def test_an_undefined_value_inside_a_list_is_an_error() -> None:
    assert "'missing' is undefined" in render_error("{{ [inputs.missing] }}").message


def test_is_defined_works_on_missing_keys_at_any_depth() -> None:
    assert render("{{ steps.approve.output.by is defined }}") is True
    assert render("{{ steps.approve.output.nope is defined }}") is False
    assert render("{{ steps.skipped_one.output.x is defined }}") is False
    assert render("{{ steps.nope.output.x.y is defined }}") is False


def test_the_default_filter_replaces_an_undefined_value() -> None:
    assert render("{{ inputs.missing|default('none') }}") == "none"


def test_a_syntax_error_names_the_line() -> None:
    with pytest.raises(ExpressionError) as info:
        check_template("ok {{ inputs.a }}\n{{ inputs.b +* 2 }}", path="steps.a.with.text")
    assert info.value.path == "steps.a.with.text"
    assert info.value.message.startswith("line 2: ")


def test_an_unknown_filter_is_a_template_error() -> None:
    with pytest.raises(ExpressionError, match="No filter named 'nope'"):
        check_template("{{ inputs.a|nope }}")


def test_valid_templates_pass_the_check() -> None:
    check_template("Host {{ inputs.host_id }} {% for h in inputs.hosts %}{{ h }}{% endfor %}")
    check_template("no braces at all")


# -- sandbox ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ inputs|attr('__class__') }}",
        "{{ inputs.hosts|attr('__class__') }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ lipsum.__globals__ }}",
        "{{ self }}",
        "{{ self._TemplateReference__context }}",
        "{{ '{0.__class__}'.format(inputs) }}",
        "{{ '{0.__class__}'.format_map(inputs) }}",
        "{{ '{0}'|attr('format') }}",
        "{{ range.__call__ }}",
        "{{ dict.__init__ }}",
        "{{ inputs.keys.__self__ }}",
        "{{ (1).__class__.__base__ }}",
        "{% for x in [1] %}{{ loop.__class__ }}{% endfor %}",
        "{% for x in [1] %}{{ loop }}{% endfor %}",
        "{{ inputs.hosts|map('upper')|attr('gi_frame') }}",
        "{{ config }}",
        "{{ request.environ }}",
    ],
)
def test_python_internals_are_out_of_reach(template: str) -> None:
    error = render_error(template)
    assert "<class" not in error.message
    assert "module" not in error.message


@pytest.mark.parametrize("name", ["lipsum", "cycler", "joiner", "namespace"])
def test_risky_globals_are_removed(name: str) -> None:
    assert render_error(f"{{{{ {name}() }}}}").message == f"'{name}' is undefined"


def test_methods_outside_the_whitelist_are_refused() -> None:
    assert render("{{ inputs.host_id.upper() }}") == "H-1"
    assert render("{{ 'a,b'.split(',') }}") == ["a", "b"]
    started = time.monotonic()
    assert "unsafe" in render_error("{{ 'x'.ljust(10 ** 9) }}").message
    assert "unsafe" in render_error("{{ (1).to_bytes(10 ** 9, 'big') }}").message
    assert "unsafe" in render_error("{{ inputs.hosts.append(1) }}").message
    assert time.monotonic() - started < 0.5


def test_lists_and_dicts_from_the_context_cannot_be_modified() -> None:
    render_error("{{ inputs.labels.update({'env': 'dev'}) }}")
    assert CONTEXT["inputs"]["labels"] == {"env": "prod"}


@pytest.mark.parametrize(
    "tag",
    [
        "{% macro m() %}x{% endmacro %}",
        "{% call m() %}x{% endcall %}",
        "{% import 'other' as o %}",
        "{% from 'other' import x %}",
        "{% include 'other' %}",
        "{% extends 'base' %}",
        "{% block b %}x{% endblock %}",
    ],
)
def test_forbidden_tags_are_rejected_by_the_check_and_at_render(tag: str) -> None:
    with pytest.raises(ExpressionError, match=r"line 1: .* is not allowed"):
        check_template(f"ok {tag}")
    assert "is not allowed" in render_error(f"ok {tag}").message


def test_for_loops_nest_at_most_two_deep() -> None:
    two = "{% for a in [1, 2] %}{% for b in [3] %}{{ a }}{{ b }},{% endfor %}{% endfor %}"
    assert render(two) == "13,23,"
    three = "{% for a in [1] %}{% for b in [1] %}\n{% for c in [1] %}{% endfor %}"
    three += "{% endfor %}{% endfor %}"
    with pytest.raises(ExpressionError, match="line 2: for-loops may nest at most 2 deep"):
        check_template(three)


def test_recursive_for_loops_are_rejected() -> None:
    with pytest.raises(ExpressionError, match="recursive"):
        check_template("{% for x in inputs.hosts recursive %}{{ loop(x) }}{% endfor %}")


# -- limits ----------------------------------------------------------------------------------


def test_output_larger_than_the_limit_is_an_error() -> None:
    template = "{% for i in range(10000) %}{{ 'x' * 100 }}{% endfor %}"
    assert render_error(template).message == f"output exceeds {MAX_OUTPUT_BYTES} bytes"
    assert len(render("{% for i in range(100) %}{{ 'x' * 100 }}{% endfor %}")) == 10_000


def test_evaluation_longer_than_the_budget_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(expressions, "MAX_SECONDS", 0.05)
    started = time.monotonic()
    # No call or attribute access inside the loops: only the per-iteration check can stop it.
    error = render_error(
        "{% set r = range(10000) %}{% for a in r %}{% for b in r %}{% endfor %}{% endfor %}"
    )
    assert "longer than 0.05 s" in error.message
    assert time.monotonic() - started < 1


def test_condition_evaluation_is_time_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert evaluate_condition("inputs.count > 1", CONTEXT)
    monkeypatch.setattr(expressions, "MAX_SECONDS", -1)
    with pytest.raises(ExpressionError, match="longer than"):
        evaluate_condition("inputs.count > 1", CONTEXT)


def test_range_is_capped() -> None:
    assert render(f"{{{{ range({MAX_RANGE})|length }}}}") == MAX_RANGE
    assert "limited to" in render_error(f"{{{{ range({MAX_RANGE + 1}) }}}}").message
    assert "limited to" in render_error("{{ range(10 ** 30) }}").message


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'a' * 10 ** 9 }}",
        "{{ 10 ** 9 * 'a' }}",
        "{{ [0] * 10 ** 9 }}",
        "{{ 9 ** (9 ** 9) }}",
        "{{ 2 ** 100000 }}",
        "{{ (2 ** 4000) * (2 ** 4000) }}",
    ],
)
def test_multiplication_and_powers_are_capped_before_computing(template: str) -> None:
    started = time.monotonic()
    assert "exceeds" in render_error(template).message
    assert time.monotonic() - started < 0.5


def test_small_products_and_powers_still_work() -> None:
    assert render("{{ 'ab' * 3 }}") == "ababab"
    assert render("{{ 2 ** 10 }}") == 1024
    # Jinja's ** is left-associative: this is (9 ** 9) ** 9, a 261-bit number.
    assert render("{{ 9 ** 9 ** 9 }}") == (9**9) ** 9


@pytest.mark.parametrize(
    "template",
    [
        "{% set a = 'x' * 1000 %}" + "{% set a = a ~ a %}" * 12 + "{{ a|length }}",
        "{% set a = 'x' * 1000 %}" + "{% set a = a + a %}" * 12 + "{{ a|length }}",
        "{% set a = [0] * 1000 %}{% set b = [a] * 100 %}{% set c = [b, b, b] %}{{ c|length }}",
        "{% set a = [0] * 1000 %}{% set b = {'x': a, 'y': a} %}"
        "{% set c = (b, b, b, b, b, b, b, b) %}{% set d = [c] * 20 %}{{ d|length }}",
        "{% set x %}{% for i in range(1000) %}{{ 'y' * 1000 }}{% endfor %}{% endset %}{{ x }}",
        "{{ range(1000)|join('x' * 1000) }}",
        "{{ ('a' * 1000)|replace('', 'b' * 1000) }}",
        "{{ dict(a=['x' * 100000] * 3) }}",
    ],
)
def test_values_built_by_a_template_are_size_checked(template: str) -> None:
    assert "exceeds" in render_error(template).message


@pytest.mark.parametrize(
    "template",
    [
        "{{ '%999999d'|format(1) }}",
        "{{ '%.99999f' % 1.5 }}",
        "{{ '%*d' % (10 ** 9, 1) }}",
        "{{ 5|round(-10 ** 9) }}",
        "{{ inputs.labels|tojson(indent=10 ** 6) }}",
        "{{ [[1], [2]]|sum(start=[]) }}",
    ],
)
def test_filters_with_costly_arguments_are_refused(template: str) -> None:
    render_error(template)


def test_the_replaced_filters_still_work() -> None:
    assert render("{{ '%05.1f%%'|format(3.14159) }}") == "003.1%"
    assert render("{{ 'host %s' % inputs.host_id }}") == "host h-1"
    assert render("{{ inputs.hosts|join(', ') }}") == "web-1, web-2, db-1"
    assert render("{{ inputs.host_id|replace('-', '_') }}") == "h_1"
    assert render("{{ 3.14159|round(2) }}") == 3.14
    assert render("{{ [1, 2, 3]|sum }}") == 6


def test_a_compiled_template_is_reused() -> None:
    template = "cache {{ inputs.count }} {{ inputs.host_id }}"
    render(template)
    before = expressions._compile.cache_info().hits
    render(template)
    assert expressions._compile.cache_info().hits == before + 1


# -- static analysis -----------------------------------------------------------------------


def test_referenced_steps_finds_attribute_and_item_syntax() -> None:
    template = "{{ steps.enrich.output.x }} {{ steps['approve'].outcome }} {{ inputs.steps.no }}"
    assert referenced_steps(template) == {"enrich", "approve"}


def test_referenced_steps_looks_inside_tags_and_filters() -> None:
    template = "{% for h in steps.search.output.items %}{{ h|default(steps.b.x) }}{% endfor %}"
    assert referenced_steps(template) == {"search", "b"}


def test_referenced_steps_reads_bare_and_wrapped_expressions() -> None:
    assert referenced_steps("steps.a.outcome == 'approved'", expression=True) == {"a"}
    assert referenced_steps("{{ steps.a }}", expression=True) == {"a"}
    assert referenced_steps("steps.a == 1") == set()  # a template: plain text


def test_referenced_steps_of_invalid_syntax_is_empty() -> None:
    assert referenced_steps("{{ steps.a") == set()
    assert referenced_steps("steps.a ==", expression=True) == set()


def test_uses_status_function_sees_only_calls_of_the_helpers() -> None:
    assert uses_status_function("always()")
    assert uses_status_function("failed() or steps.a.outcome == 'x'")
    assert uses_status_function("{{ not cancelled() }}")
    assert not uses_status_function("steps.a.failed()")
    assert not uses_status_function("succeeded")
    assert not uses_status_function("always(")


def test_uses_item_ignores_a_loop_variable_named_item() -> None:
    assert uses_item("{{ item }}")
    assert uses_item("item_index > 0", expression=True)
    assert not uses_item("{% for item in inputs.hosts %}{{ item }}{% endfor %}")
    assert not uses_item("{{ inputs.item }}")


# -- conditions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("steps.approve.outcome == 'approved' and inputs.count > 2", True),
        ("steps.approve.outcome == 'rejected'", False),
        ("inputs.hosts", True),
        ("inputs.empty", False),
        ("inputs.note", False),
        ("'web-1' in inputs.hosts", True),
        ("{{ inputs.count == 3 }}", True),
        ("steps.approve.output.nope is defined", False),
    ],
)
def test_a_condition_is_the_truthiness_of_its_value(expr: str, expected: bool) -> None:
    assert evaluate_condition(expr, CONTEXT) is expected


def test_status_functions_are_passed_in_as_globals() -> None:
    functions = {"always": lambda: True, "failed": lambda: False}
    assert evaluate_condition("always()", CONTEXT, functions=functions)
    assert not evaluate_condition("failed() and always()", CONTEXT, functions=functions)
    with pytest.raises(ExpressionError, match="'failed' is undefined"):
        evaluate_condition("failed()", CONTEXT)


def test_a_condition_on_an_undefined_value_is_an_error_naming_the_path() -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate_condition("inputs.nope == 1", CONTEXT, path="steps.a.if")
    assert str(info.value) == "steps.a.if: 'nope' is undefined"


@pytest.mark.parametrize("expr", ["a ==", "a }} {{ b", "{{ a }} {{ b }}", "a b", "x|nope"])
def test_check_expression_rejects_invalid_expressions(expr: str) -> None:
    with pytest.raises(ExpressionError) as info:
        check_expression(expr, path="steps.a.if")
    assert info.value.path == "steps.a.if"


def test_check_expression_accepts_bare_and_wrapped_expressions() -> None:
    check_expression("steps.a.outcome == 'approved' and inputs.x > 3")
    check_expression("{{ always() or steps['b'].status == 'failed' }}")
