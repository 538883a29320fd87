"""The fast engine's machine operations: fused multiply-add and atomic fetch-and-add."""

from __future__ import annotations

import math
from fractions import Fraction

import numba as nb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ketadur.engine.intrinsics import fetch_add, fma


@nb.njit
def _compiled_fma(a, b, c):
    return fma(a, b, c)


@nb.njit
def _compiled_fma_loop(a, b, c, out):
    for i in range(a.size):  # vectorised: the vector instruction
        out[i] = fma(a[i], b[i], c[i])


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e150, max_value=1e150)


@settings(max_examples=300, deadline=None)
@given(finite, finite, finite)
def test_compiled_fma_is_the_python_one(a: float, b: float, c: float) -> None:
    """The CPU's instruction and Python's exact arithmetic: two implementations, the same bits."""
    assert math.copysign(1.0, _compiled_fma(a, b, c)) == math.copysign(1.0, fma(a, b, c))
    assert _compiled_fma(a, b, c) == fma(a, b, c)


def test_fma_rounds_once() -> None:
    # 0.1 is 0.1000000000000000055511151231257827...: a * b + c rounded twice loses the tail
    assert 0.1 * 10.0 - 1.0 == 0.0
    assert fma(0.1, 10.0, -1.0) == _compiled_fma(0.1, 10.0, -1.0) == 5.551115123125783e-17
    # (1 + 2**-30)**2 - 1 = 2**-29 + 2**-60: the 2**-60 survives only a single rounding
    x = 1.0 + 2.0**-30
    assert fma(x, x, -1.0) == _compiled_fma(x, x, -1.0) == 2.0**-29 + 2.0**-60
    assert x * x - 1.0 == 2.0**-29


def test_fma_against_exact_rounding_in_a_vector_loop() -> None:
    """Many random triples, the compiled loop (vector instructions) against Fraction arithmetic
    rounded by hand: the exact value's nearest float, ties to even, found from its neighbours."""
    rng = np.random.default_rng(7)
    n = 2000
    a, b, c = (rng.standard_normal(n) * np.exp(rng.uniform(-30, 30, n)) for _ in range(3))
    out = np.empty(n)
    _compiled_fma_loop(a, b, c, out)
    for ai, bi, ci, oi in zip(a, b, c, out, strict=True):
        exact = Fraction(ai) * Fraction(bi) + Fraction(ci)
        below, above = math.nextafter(oi, -math.inf), math.nextafter(oi, math.inf)
        error = abs(Fraction(oi) - exact)
        assert error <= abs(Fraction(below) - exact)
        assert error <= abs(Fraction(above) - exact)
        assert oi == fma(ai, bi, ci)


def test_fma_special_values() -> None:
    inf, nan = math.inf, math.nan
    cases = [
        (-0.0, 1.0, -0.0, -0.0),
        (0.0, -1.0, -0.0, -0.0),
        (0.0, 1.0, -0.0, 0.0),
        (2.0, 3.0, -6.0, 0.0),  # an exact zero sum is +0 when rounding to nearest
        (1e308, 10.0, 0.0, inf),
        (-1e308, 10.0, 0.0, -inf),
        (1e-310, 0.5, 0.0, 5e-311),  # subnormal
        (inf, 0.0, 1.0, nan),
        (inf, 1.0, -inf, nan),
        (inf, 2.0, 1.0, inf),
        (1.0, 1.0, nan, nan),
    ]
    for a, b, c, expected in cases:
        for got in (fma(a, b, c), _compiled_fma(a, b, c)):
            if math.isnan(expected):
                assert math.isnan(got), (a, b, c, got)
            else:
                assert got == expected, (a, b, c, got)
                assert math.copysign(1.0, got) == math.copysign(1.0, expected), (a, b, c, got)


def test_fma_takes_integers() -> None:
    assert fma(2, 3, 4) == _compiled_fma(2, 3, 4) == 10.0


@nb.njit(parallel=True)
def _take_all(counter, n, taken, counts):
    for t in nb.prange(counts.size):
        while True:
            k = fetch_add(counter, 0, 1)
            if k >= n:
                break
            taken[k] = 1
            counts[t] += 1


def test_fetch_add_hands_out_each_value_once() -> None:
    counter = np.zeros(1, dtype=np.int64)
    taken = np.zeros(200_000, dtype=np.int64)
    counts = np.zeros(4, dtype=np.int64)
    _take_all(counter, taken.size, taken, counts)
    assert taken.all()  # every value taken...
    assert counts.sum() == taken.size  # ...once
    assert counter[0] == taken.size + counts.size  # each thread's last call found the end
