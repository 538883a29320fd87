"""``fmax``/``fmin``: Python's ``max``/``min`` of two numbers, compiled as a comparison and a
select (so that loops over patients vectorise)."""

from __future__ import annotations

import math

import numba as nb
from hypothesis import given
from hypothesis import strategies as st

from ketadur.model.select import fmax, fmin

_compiled_max = nb.njit(lambda a, b: fmax(a, b))
_compiled_min = nb.njit(lambda a, b: fmin(a, b))
_numbers = st.floats(allow_nan=False) | st.sampled_from([0.0, -0.0, math.inf, -math.inf])


@given(_numbers, _numbers)
def test_same_as_the_builtins_in_python_and_compiled(a, b):
    for ours, builtin in ((fmax, max), (fmin, min)):
        expected = builtin(a, b)
        assert math.copysign(1.0, ours(a, b)) == math.copysign(1.0, expected)
        assert ours(a, b) == expected
    for compiled, builtin in ((_compiled_max, max), (_compiled_min, min)):
        got, expected = compiled(a, b), builtin(a, b)
        assert got == expected and math.copysign(1.0, got) == math.copysign(1.0, expected)


def test_integers_and_mixed_arguments_compile_to_floats():
    assert _compiled_max(1, 2.5) == 2.5 and _compiled_min(3, -1) == -1.0
