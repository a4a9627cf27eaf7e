"""The fast text check of JSON bodies never lets through what the full walk would refuse."""
from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from annotator.core.jsoncheck import MAX_DEPTH, json_problem, json_text_is_plain

_TRICKY = st.sampled_from(list('[]{}"\\\x00'))
_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-2**60, 2**60)
    | st.text(alphabet=st.characters(codec="utf-8") | _TRICKY),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(alphabet=_TRICKY | st.just("a"), max_size=3), children, max_size=3),
    max_leaves=60,
)


@settings(max_examples=500, deadline=None)
@given(_VALUES, st.integers(1, 6))
def test_text_called_plain_passes_the_full_check(value, depth):
    body = orjson.dumps(value)
    if json_text_is_plain(body, max_depth=depth):
        assert json_problem(orjson.loads(body), max_depth=depth) is None


def _nested(depth: int) -> object:
    value: object = 1
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]  # alternating kinds: one level per pass still
    return value


def test_nesting_and_nul_are_judged_as_the_full_check_judges_them():
    for depth in (MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 2 * MAX_DEPTH):
        body = orjson.dumps(_nested(depth))
        assert json_text_is_plain(body) == (json_problem(orjson.loads(body)) is None)
    assert not json_text_is_plain(orjson.dumps({"name": "a\x00b"}))
    assert json_text_is_plain(orjson.dumps({"brackets in text": "[[[[{{{{" * 20}))
