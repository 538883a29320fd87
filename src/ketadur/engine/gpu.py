"""GPU path of the fast engine (optional): the same integrator, one CUDA thread per patient.

The kernel is :func:`ketadur.engine.fast._integrate_one` itself, retargeted by Numba's CUDA
compiler (``numba-cuda``): the right-hand side, the exact PK, the ARK4(3)7L[2]SA1 stages and the
step control are the very functions the CPU engine compiles, so the GPU cannot drift from it.
Nothing here is needed to use ketadur; without a CUDA GPU :func:`gpu_available` is false and
asking for ``device="gpu"`` is an input error.

Results agree with the CPU fast engine to rounding (besides the multiply-adds both devices fuse,
:func:`ketadur.engine.intrinsics.fma`, the GPU contracts others into fused ones, and it has its
own ``exp`` and ``pow``), and a step accepted on one device can then be rejected
on the other, so the two differ by up to the step control's tolerance, far inside the 1e-3
agreement with the reference engine; on one device, runs are identical bit for bit (one thread
per patient, no reductions across threads). ``docs/benchmarks.md`` has the measurements.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from numba import config, cuda

from ketadur.engine import fast
from ketadur.errors import KetadurInputError
from ketadur.model.cascade import CascadeConstants
from ketadur.model.pk import PKConstants
from ketadur.model.synapse_mood import SynapseConstants

THREADS_PER_BLOCK = 64
"""CUDA threads per block. Each thread keeps about 2.4 KB of scratch in local memory; small blocks
let the scheduler fill every multiprocessor when a chunk is only a few thousand patients."""

CHUNKS_IN_FLIGHT = 1 if config.ENABLE_CUDASIM else 2
"""Chunks the population engine prepares at once on the GPU path: one chunk's schedules and
constants are computed on the CPU while the GPU integrates another (the CPU side takes about
twice the GPU's time). One under Numba's CUDA simulator, which swaps this module's ``cuda`` for
its own while a kernel runs and so cannot run two at once."""


def gpu_available() -> bool:
    """Whether a CUDA GPU and Numba's CUDA target are usable in this process."""
    try:
        return bool(cuda.is_available())
    except Exception:  # the driver raises several kinds of error when it is missing or broken
        return False


def check_device(device: str) -> str:
    """``device`` if it can be used here: "cpu", or "gpu" where :func:`gpu_available`."""
    if device not in ("cpu", "gpu"):
        raise KetadurInputError("device", 'must be "cpu" or "gpu"', device)
    if device == "gpu" and not gpu_available():
        msg = "no CUDA GPU is usable here (it needs an NVIDIA driver and the numba-cuda package)"
        raise KetadurInputError("device", msg, device)
    return device


def _unpacker(cls: type) -> Callable:
    """A function building ``cls`` (a constants named tuple) from a row of floats. Written out
    field by field, because the CPU engine's fixed-tuple conversion is a CPU-only intrinsic."""
    fields = ", ".join(f"row[{k}]" for k in range(len(cls._fields)))
    namespace: dict = {"cls": cls}
    exec(f"def unpack(row):\n    return cls({fields})\n", namespace)
    return namespace["unpack"]


_DEVICE = cuda.jit(device=True)
_PKC, _CC, _SC = (_DEVICE(_unpacker(c)) for c in (PKConstants, CascadeConstants, SynapseConstants))
_WORK_SIZE, _IWORK_SIZE = fast._WORK_SIZE, fast._IWORK_SIZE


def _unwrapping(integrate: Callable) -> Callable:
    """``integrate`` taking the array wrappers of Numba's CUDA simulator, which runs a kernel as
    Python (the tests' GPU without a GPU) and hands the compiled integrator its wrapped arrays."""

    def call(*args):
        plain = (a if isinstance(a, float | int | tuple) else np.asarray(a) for a in args)
        return integrate(*plain)

    return call


_INTEGRATE = _unwrapping(fast._integrate_one) if config.ENABLE_CUDASIM else fast._integrate_one


def _kernel_body(
    pkc_rows, cc_rows, sc_rows, lam, v, v_inv, bp_t, bp_u, jptr, j_kind, j_value, j_delta,
    le_ptr, le_t, le_points, y0, t_start, t_end, t_out, codes, rtol, atol, max_step,
    out, y_end, steps,
):  # fmt: skip
    """One thread: patient ``cuda.grid(1)`` through the CPU engine's own integrator."""
    i = cuda.grid(1)
    if i >= y0.shape[0]:
        return
    work = cuda.local.array(_WORK_SIZE, np.float64)
    iwork = cuda.local.array(_IWORK_SIZE, np.int64)
    steps[i] = _INTEGRATE(
        _PKC(pkc_rows[i]), _CC(cc_rows[i]), _SC(sc_rows[i]), lam[i], v[i], v_inv[i],
        bp_t, bp_u[i], jptr, j_kind, j_value[i], j_delta[i],
        le_t[le_ptr[i] : le_ptr[i + 1]], le_points[le_ptr[i] : le_ptr[i + 1]],
        y0[i], t_start, t_end, t_out, codes, rtol, atol, max_step, out[i], y_end[i],
        work, iwork,
    )  # fmt: skip


@functools.cache
def _kernel() -> Callable:
    """The CUDA kernel, compiled at its first launch (about 20 s) and kept for the process."""
    return cuda.jit(_kernel_body)


def integrate_batch_gpu(*args) -> None:
    """:func:`ketadur.engine.fast.integrate_batch` on the GPU, with the same arguments (the last
    three, ``out``, ``y_end`` and ``steps``, are filled in place)."""
    *inputs, out, y_end, steps = args
    n = y_end.shape[0]
    if n == 0:
        return
    on_device = [
        cuda.to_device(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a for a in inputs
    ]
    d_out, d_y_end, d_steps = (cuda.to_device(a) for a in (out, y_end, steps))
    blocks = (n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    _kernel()[blocks, THREADS_PER_BLOCK](*on_device, d_out, d_y_end, d_steps)
    d_out.copy_to_host(out)
    d_y_end.copy_to_host(y_end)
    d_steps.copy_to_host(steps)
