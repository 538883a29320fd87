"""Modal (eigen) form of the linear PK block, for many patients at once.

The fast engine propagates the PK states exactly: in modal coordinates ``z = V^-1 x`` each mode
decays independently, ``z(t + h) = exp(lambda h) z + h phi1(lambda h) w u``. The PK graph is a
cascade (depots -> central <-> peripheral -> norketamine -> cleared, and the effect sites), so each
eigenvector is built from its source compartment downstream only: the two oral depots share an
absorption rate without making the matrix defective. Exactly coinciding rates along one path (a
defective matrix) are separated by a relative 1e-9 nudge, far below any tolerance used here.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from ketadur.model import pk

N_LOCAL = len(pk.PK_LOCAL)
_NUDGE = 1e-9
_MAX_RECONSTRUCTION_ERROR = 1e-8


class PKModes(NamedTuple):
    """Eigenvalues ``lam`` (n, 10, per hour), eigenvectors ``v`` and their inverse ``v_inv``
    (n, 10, 10) of one enantiomer's PK block (S and R share it)."""

    lam: NDArray[np.float64]
    v: NDArray[np.float64]
    v_inv: NDArray[np.float64]


def _reachable(pattern: NDArray[np.bool_], source: int) -> list[int]:
    """Compartments fed, directly or not, by ``source`` (``pattern[i, j]``: j feeds i)."""
    seen: set[int] = set()
    stack = [source]
    while stack:
        j = stack.pop()
        for i in np.flatnonzero(pattern[:, j]):
            if i != source and int(i) not in seen:
                seen.add(int(i))
                stack.append(int(i))
    return sorted(seen)


def _modes(a: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    """Eigenvalues and eigenvectors of stacked blocks ``a`` (n, 10, 10) built source-downstream."""
    n = a.shape[0]
    idx = {name: i for i, name in enumerate(pk.PK_LOCAL)}
    cen, per = idx["central"], idx["peripheral"]
    pattern = np.any(a != 0.0, axis=0) & ~np.eye(N_LOCAL, dtype=bool)
    lam = np.empty((n, N_LOCAL))
    v = np.zeros((n, N_LOCAL, N_LOCAL))
    # The central-peripheral pair is the only block with two-way exchange: its 2x2 eigenpairs.
    tr = a[:, cen, cen] + a[:, per, per]
    det = a[:, cen, cen] * a[:, per, per] - a[:, cen, per] * a[:, per, cen]
    root = np.sqrt(np.maximum(tr * tr / 4.0 - det, 0.0))
    pair = (tr / 2.0 + root, tr / 2.0 - root)  # the slow and the fast disposition rate
    col = 0
    for name in pk.PK_LOCAL:
        i = idx[name]
        if name == "peripheral":
            continue
        sources = [cen, per] if name == "central" else [i]
        for k in range(len(sources)):
            if name == "central":
                lam_k = pair[k]
                vs = np.stack([a[:, cen, per], lam_k - a[:, cen, cen]], axis=1)
                vs /= np.linalg.norm(vs, axis=1, keepdims=True)
            else:
                lam_k = a[:, i, i]
                vs = np.ones((n, 1))
            lam[:, col] = lam_k
            v[:, sources, col] = vs
            down = sorted(set().union(*(_reachable(pattern, s) for s in sources)) - set(sources))
            if down:
                m = a[:, down][:, :, down] - lam_k[:, None, None] * np.eye(len(down))
                rhs = -np.einsum("nds,ns->nd", a[:, down][:, :, sources], vs)
                v[:, down, col] = np.linalg.solve(m, rhs[..., None])[..., 0]
            col += 1
    return lam, v


def _checked(a: NDArray[np.float64]) -> PKModes | None:
    """Modes of ``a`` (n, 10, 10), or None if any block is (nearly) defective."""
    try:
        lam, v = _modes(a)
        v_inv = np.linalg.inv(v)
    except np.linalg.LinAlgError:
        return None
    err = np.abs(v @ (lam[:, :, None] * v_inv) - a).max(axis=(1, 2))
    if not np.all(err <= _MAX_RECONSTRUCTION_ERROR * np.abs(a).max(axis=(1, 2))):
        return None
    return PKModes(lam, v, v_inv)


def pk_modes(a_block: NDArray[np.float64]) -> PKModes:
    """Modes of stacked PK blocks ``a_block`` (n, 10, 10), per hour.

    A block that is (nearly) defective, because two rates along one path coincide exactly, is
    recomputed with its diagonal rates nudged apart by a relative 1e-9.
    """
    a = np.array(a_block, dtype=float)
    modes = _checked(a)
    if modes is not None:
        return modes
    parts = []
    diag = np.arange(N_LOCAL)
    for i in range(a.shape[0]):
        one = _checked(a[i : i + 1])
        if one is None:
            nudged = a[i : i + 1].copy()
            nudged[:, diag, diag] *= 1.0 + _NUDGE * (1.0 + diag)
            one = _checked(nudged)
            if one is None:
                raise np.linalg.LinAlgError("PK modes could not be separated")
        parts.append(one)
    return PKModes(*(np.concatenate(x) for x in zip(*parts, strict=True)))
