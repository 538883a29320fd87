"""Two machine operations the fast engine needs and Numba does not offer: a fused multiply-add,
written where the engine wants one, and an atomic fetch-and-add, the shared counter from which
the lane groups of a batch take their patients.

The fast engine's hottest sums (the Runge-Kutta stage sums and error estimate, the exact PK and
its exponential) are chains of multiply-adds. Fused, each is one instruction instead of two and
one rounding instead of two; letting the compiler fuse where it likes (Numba's
``fastmath={"contract"}``) made the engine about 9 % faster but not reproducible, because where
LLVM fuses depends on the code around an expression: the lanes, the one-patient integrator and
processes compiled for another vector width gave different last bits (``docs/benchmarks.md``).
Written out, a fused multiply-add is fused everywhere it is written and nowhere else, so every
engine that writes the same expression gets the same bits.

In compiled code :func:`fma` is LLVM's ``llvm.fma.f64`` intrinsic: an FMA instruction on CPUs
that have one (every x86-64 CPU since 2013, ARMv8), a correctly rounded library call on others,
``fma.rn.f64`` on NVIDIA GPUs; vectorised loops use the vector instruction. Called from Python
it is exact as well, so the three agree bit for bit.
"""

from __future__ import annotations

import math
from fractions import Fraction

from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic, overload

_MATH_FMA = getattr(math, "fma", None)
"""Python's correctly rounded fused multiply-add (Python 3.13 and later), or None."""


def fma(a: float, b: float, c: float) -> float:
    """``a * b + c`` with a single rounding (IEEE 754 fusedMultiplyAdd). Python's own
    ``math.fma`` (3.13 and later) where there is one; before that, exact rational arithmetic,
    whose conversion to float rounds to nearest, ties to even, as the instruction does.

    >>> 0.1 * 10.0 - 1.0  # 0.1 is a little more than a tenth; rounded twice, that is lost
    0.0
    >>> fma(0.1, 10.0, -1.0)
    5.551115123125783e-17
    """
    a, b, c = float(a), float(b), float(c)
    if _MATH_FMA is not None:
        return _MATH_FMA(a, b, c)
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(c)) or a == 0.0 or b == 0.0:
        return a * b + c  # the product is exact (or not finite): one rounding either way
    try:
        return float(Fraction(a) * Fraction(b) + Fraction(c))  # an exact zero gives +0.0
    except OverflowError:
        return math.inf if a * b > 0.0 else -math.inf


@intrinsic
def _llvm_fma(typingctx, a, b, c):
    """``llvm.fma.f64`` of three float64 values."""
    signature = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, sig, args):
        return builder.fma(*args)

    return signature, codegen


@overload(fma, jit_options={"inline": "always"})
def _fma_compiled(a, b, c):
    """:func:`fma` in compiled code."""

    def impl(a, b, c):
        return _llvm_fma(float(a), float(b), float(c))

    return impl


@intrinsic
def fetch_add(typingctx, counter, index, value):
    """Add ``value`` to ``counter[index]`` (an int64 array) atomically and return what it held
    before: threads sharing the counter each get a value of their own. For compiled code only.

    A batch's lane groups (one per thread) take their next patient this way, so that a thread
    slowed by the rest of the machine takes fewer patients instead of holding the others up at
    the batch's end (equal shares fixed in advance left a core idle for a tenth of each batch on
    the 2-core machine, ``docs/benchmarks.md``). Which thread runs a patient does not change
    the patient's results."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None
    signature = types.int64(counter, types.intp, types.int64)

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        pointer = cgutils.get_item_pointer(
            context, builder, sig.args[0], array, [args[1]], wraparound=False
        )
        return builder.atomic_rmw("add", pointer, args[2], "monotonic")

    return signature, codegen
