"""The lanes' loops compile to vector instructions.

Nothing in Numba says when a loop stays scalar: a floating-point reduction across lanes, a load
inside one branch of a choice, or a loop over modes inside a loop over lanes is enough, and the
lane then runs scalar code with the same results (``docs/benchmarks.md``, "Loops that were not
vectorised"). Here each lane kernel is compiled afresh, in a separate process, with LLVM's
loop-vectoriser remarks on, and the remarks are read: every kernel must have vectorised loops and
none of the failures that such constructs cause (the kernels of 2026-12-05's afternoon fail here:
the trial step, the verdicts and the update).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_SCRIPT = r"""
import json, os, sys, tempfile
import ketadur  # the vector width, before Numba loads
import llvmlite.binding as llvm
llvm.set_option("", "--pass-remarks=loop-vectorize")
llvm.set_option("", "--pass-remarks-analysis=loop-vectorize")
import numba as nb
import numpy as np
from ketadur.engine import lanes as L
from ketadur.engine.fast import N_IN, N_LOCAL, N_NL, _JIT

n, nm, nl = L.LANES, N_LOCAL * L.LANES, N_NL * L.LANES
z = np.zeros
LV = z((L._N_LV, n))
flags = z(2 * N_LOCAL, dtype=np.bool_)
cc = z(L._N_CC * n) + 1.0
sc = z(L._N_SC * n) + 1.0
calls = {
    "_lane_pk": (0.3, z(n), z(nm), z(nm), z(nm), z(nm), z(nm), z(N_IN * n), z(nm), z(nm), z(n),
                 z(n), flags, 0, z(nm), z(nm), z(4 * n), z(4 * n), n),
    "_lane_prestep": (LV, 6.0, z(nm), z(nm), z(nm), z(nm), z(nm), z(N_IN * n), z(4 * n), flags, n),
    "_lane_losses": (z(nl), z(4 * n), z(N_IN * n), cc, sc, z(n), z(nl), z(nl), z(7 * nl), n),
    "_lane_rhs": (z(nl), z(4 * n), z(N_IN * n), cc, sc, z(nl), n),
    "_LANE_ERROR": (z(nl), z(nl), z(7 * nl), z(nl), z(n), z(N_NL), z(N_NL), z(n), z(n), n),
    "_lane_accept": (LV, z(n), z(n), n),
    "_lane_update": (LV, z(nl), z(nl), z(nm), z(nm), z(nm), z(nm), flags, z(nm), z(N_IN * n),
                     z(nm), z(4 * n), n),
}
options = {key: value for key, value in _JIT.items() if key != "cache"}
remarks = {}
for name, args in calls.items():
    fresh = nb.njit(**options)(getattr(L, name).py_func)  # not cached: compiled here
    with tempfile.TemporaryFile() as err:
        saved = os.dup(2)
        os.dup2(err.fileno(), 2)
        try:
            fresh(*args)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        err.seek(0)
        remarks[name] = err.read().decode(errors="replace")
print(json.dumps(remarks))
"""

_FAILURES = (
    "value that could not be identified as reduction",  # a float max or sum across lanes
    "cannot prove it is safe to reorder floating-point operations",
    "unsafe dependent memory operations",  # a load in one branch of a choice
    "too many memory checks needed",
    "cannot identify array bounds",
    "call instruction cannot be vectorized",
)
_EXPECTED = {"_lane_losses": {_FAILURES[0]}}
"""Failures that are not the lanes' (the loss rates' own code, written out per state)."""


@pytest.fixture(scope="module")
def remarks() -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "kernel",
    ["_lane_pk", "_lane_prestep", "_lane_losses", "_lane_rhs", "_LANE_ERROR", "_lane_accept",
     "_lane_update"],
)  # fmt: skip
def test_lane_kernel_is_vectorised(remarks, kernel):
    text = remarks[kernel]
    assert "vectorized loop" in text, text
    for failure in set(_FAILURES) - _EXPECTED.get(kernel, set()):
        assert failure not in text, f"{kernel}: {failure}\n{text}"
