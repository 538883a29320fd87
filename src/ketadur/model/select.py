"""``max`` and ``min`` of two numbers as a comparison and a choice.

They return what Python's built-ins return for two numbers (``fmax(a, b)`` is ``a`` unless
``b > a``), and they are what the model's equations call where the fast engine evaluates them.
In Python they are plain functions. Compiled by Numba they become one comparison and one select,
whatever the build: with debugging information (``NUMBA_DEBUGINFO=1``) Numba's built-ins compile
to calls, and LLVM's remarks then report the lanes' loops as not vectorised (an optimised build
vectorises both alike, and the results are the same).
"""

from __future__ import annotations

from numba.core import types
from numba.extending import intrinsic, overload


def fmax(a: float, b: float) -> float:
    """The larger of ``a`` and ``b``: ``a`` unless ``b > a`` (as ``max(a, b)``)."""
    return b if b > a else a


def fmin(a: float, b: float) -> float:
    """The smaller of ``a`` and ``b``: ``a`` unless ``b < a`` (as ``min(a, b)``)."""
    return b if b < a else a


def _select_intrinsic(op: str):
    """A Numba intrinsic ``(a, b) -> b if b <op> a else a`` for two floats."""

    @intrinsic
    def choose(typingctx, a, b):
        if not (isinstance(a, types.Float) and isinstance(b, types.Float)):
            return None

        def codegen(context, builder, signature, args):
            x = context.cast(builder, args[0], signature.args[0], types.float64)
            y = context.cast(builder, args[1], signature.args[1], types.float64)
            return builder.select(builder.fcmp_ordered(op, y, x), y, x)

        return types.float64(a, b), codegen

    return choose


_fmax, _fmin = _select_intrinsic(">"), _select_intrinsic("<")


@overload(fmax, inline="always")
def _fmax_compiled(a, b):
    def impl(a, b):
        return _fmax(float(a), float(b))

    return impl


@overload(fmin, inline="always")
def _fmin_compiled(a, b):
    def impl(a, b):
        return _fmin(float(a), float(b))

    return impl
