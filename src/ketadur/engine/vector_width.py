"""Ask Numba for 512-bit vectors on CPUs that have them (AVX-512).

On such CPUs LLVM compiles loops for 256-bit vectors unless told otherwise: the first AVX-512
CPUs lowered their clock for wide instructions. The fast engine's lane kernels
(:mod:`ketadur.engine.lanes`) step 32 patients per loop; compiled for 512-bit vectors they
ran 9-11 % faster on the 2-core machine of ``docs/benchmarks.md``, with results identical bit for
bit (no kernel here allows reassociation, so every lane's arithmetic is the same at any width).

Numba takes the CPU features it compiles for from ``NUMBA_CPU_FEATURES`` when it is imported, so
:func:`prefer_wide_vectors` must run first: ``import ketadur`` runs it. It changes nothing when
``numba`` is already imported, when ``NUMBA_CPU_FEATURES`` or ``NUMBA_CPU_NAME`` is set (the
user's choice), when the CPU has no AVX-512, or when ``KETADUR_WIDE_VECTORS=0``. Numba's on-disk
cache keeps code for each feature set apart, so processes with and without it do not mix code.
The setting is process-wide: other Numba code in the process compiles for the same features.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping

OPT_OUT = "KETADUR_WIDE_VECTORS"
"""Set to ``0`` to leave Numba's vector width alone."""


def _host_features() -> Mapping[str, bool]:
    """The host CPU's features as LLVM names them (empty where LLVM cannot tell)."""
    import llvmlite.binding as llvm

    try:
        return dict(llvm.get_host_cpu_features())
    except RuntimeError:
        return {}


def prefer_wide_vectors(
    environ: MutableMapping[str, str] = os.environ,
    modules: Mapping[str, object] = sys.modules,
    features: Mapping[str, bool] | None = None,
) -> bool:
    """Set ``NUMBA_CPU_FEATURES`` in ``environ`` to the host's features (``features``; by
    default LLVM's reading of the CPU) with LLVM's preference for 256-bit vectors turned off;
    returns whether it did. See the module's docstring for when it does nothing."""
    if environ.get(OPT_OUT, "1") == "0" or "numba" in modules:
        return False
    if "NUMBA_CPU_FEATURES" in environ or "NUMBA_CPU_NAME" in environ:
        return False
    found = _host_features() if features is None else features
    if not found.get("avx512f", False):
        return False
    flags = [("+" if on else "-") + name for name, on in sorted(found.items())]
    environ["NUMBA_CPU_FEATURES"] = ",".join([*flags, "-prefer-256-bit"])
    return True
