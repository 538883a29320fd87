"""Fast engine on the CPU: patients stepped in lanes, so that one vector instruction serves several.

:func:`ketadur.engine.fast._integrate_one` integrates one patient at a time; compiled, its
right-hand side is scalar code, and Numba does not vectorise a loop over patients that calls it
(the stores it would have to check against every load are too many). Here :data:`LANES` patients
are held side by side, each quantity of theirs in adjacent memory (row ``r`` of lane ``la`` at
``r * LANES + la``), and each step is a sequence of loops over lanes that the compiler turns
into AVX2 or AVX-512 vector instructions: the trial step, the losses, the seven stages, the exact
PK at the stage times, the error estimate, the verdict, the states and PK modes moved on (with
decayed modes dropped), and the step-size control. Every lane is a patient of its own, with its
own time, step size, breakpoints, doses and outputs; only a lane that needs it (a new patient or
segment, a dose or session, a life event, an output inside its step, a rejected step) runs scalar
code, and a lane whose patient is done takes the next one: the next not yet taken by any
lane group of the batch (one group per thread), so that no thread waits idle at a batch's end
while another still has a share of its own to finish.

A patient's arithmetic is the same operations in the same order as in
:func:`~ketadur.engine.fast._integrate_one` (vector instructions round each lane as scalar ones
do, both engines fuse the same multiply-adds, :func:`~ketadur.engine.intrinsics.fma`, and
take the PK's exponentials from :func:`~ketadur.engine.fast.pk_exp`), so
the results are identical bit for bit to that function's, whatever the lanes hold beside the
patient; tests check both. The lanes need the mTORC1 Hill coefficient to be an integer in
[0, 8] (the general power does not vectorise): :func:`integrate_batch` sends other patients to
the scalar engine.
"""

from __future__ import annotations

from math import exp, log

import numba as nb
import numpy as np
from numpy.typing import NDArray

from ketadur.engine import fast
from ketadur.engine.fast import (
    _ARK_AD,
    _ARK_AE,
    _ARK_B,
    _ARK_C,
    _ARK_E,
    _ARK_GAMMA,
    _CEK,
    _CENK,
    _JIT,
    _LOG_ERR_OLD_FLOOR,
    _N_CC,
    _N_PKC,
    _N_SC,
    _N_STAGES,
    _NEGLIGIBLE_STATE,
    _PI_ALPHA,
    _PI_BETA,
    _PI_SAFETY,
    JUMP_DOSE,
    JUMP_SESSION,
    N_IN,
    N_LOCAL,
    N_NL,
    _active_modes,
    _apply_dose,
    _dense_output,
    _infusion_weights,
    _mode_weights,
    _needs_pk,
    _record,
    infusion_gain,
    pk_exp,
)
from ketadur.engine.intrinsics import fetch_add, fma
from ketadur.model.cascade import CascadeConstants
from ketadur.model.kernels import SIGNALS, make_kernels
from ketadur.model.pk import PKConstants
from ketadur.model.synapse_mood import SynapseConstants

LANES = 32
"""Patients stepped together: four vectors of eight doubles with AVX-512 (where
:mod:`ketadur.engine.vector_width` asks for 512-bit vectors), eight of four with 256-bit vectors;
32 ran about 6 % faster than 16 with 512-bit vectors (``docs/benchmarks.md``)."""

_K = make_kernels(nb.njit(**_JIT, inline="always"), integer_hill=True)
_DERIVATIVES, _LOSS_RATES, _SESSION = _K.derivatives, _K.loss_rates, _K.session_jump
_RHS = fast._RHS


def _compiled(
    source: str, name: str, namespace: dict, inline: bool = True
) -> nb.core.dispatcher.Dispatcher:
    """Compile generated ``source`` defining ``name`` (a Numba function, inlined by default;
    generated code is not cached)."""
    exec(compile(source, f"<ketadur.engine.lanes {name}>", "exec"), namespace)
    return nb.njit(error_model="numpy", inline="always" if inline else "never")(namespace[name])


def _sum_source(coefficients: np.ndarray, array: str) -> str:
    """Source of ``fma(c1, A[1 * n + r], fma(c0, A[0 * n + r], 0.0))``... (``A`` is ``array``,
    ``n`` its stage length): a stage sum written out, so that it stays in registers, with the
    scalar engine's fused multiply-adds, in its order and from its 0.0."""
    source = "0.0"
    for j, c in enumerate(coefficients):
        source = f"fma({float(c)!r}, {array}[{j} * n + r], {source})"
    return source


def _lane_reader(n: int) -> nb.core.dispatcher.Dispatcher:
    """``get(A, o, la)``: rows 0..n-1 of lane ``la`` in ``A`` from offset ``o``, as a tuple (one
    patient's values as the kernels take them, with row distances the compiler can see)."""
    items = ", ".join(f"A[o + {r * LANES} + la]" for r in range(n))
    return _compiled(f"def get(A, o, la):\n    return ({items},)\n", "get", {})


def _lane_writer(n: int) -> nb.core.dispatcher.Dispatcher:
    """``put(A, o, la, d)``: the n-tuple ``d`` into rows 0..n-1 of lane ``la`` from offset ``o``."""
    body = "".join(f"    A[o + {r * LANES} + la] = d[{r}]\n" for r in range(n))
    return _compiled(f"def put(A, o, la, d):\n{body}", "put", {})


def _lane_constants(cls: type, n: int) -> nb.core.dispatcher.Dispatcher:
    """``get(A, la)``: lane ``la``'s constants (rows of ``A``) as the named tuple ``cls``."""
    items = ", ".join(f"A[{r * LANES} + la]" for r in range(n))
    return _compiled(f"def get(A, la):\n    return cls({items})\n", "get", {"cls": cls})


_GET_NL, _PUT_NL = _lane_reader(N_NL), _lane_writer(N_NL)
_GET_CONC, _GET_U = _lane_reader(4), _lane_reader(N_IN)
_GET_PKC, _GET_CC, _GET_SC = (
    _lane_constants(PKConstants, _N_PKC),
    _lane_constants(CascadeConstants, _N_CC),
    _lane_constants(SynapseConstants, _N_SC),
)

_NL = N_NL * LANES
_WL = 8 * N_LOCAL + 6 * N_NL + 6 + len(SIGNALS)
_LANE_FLOATS = _WL + N_LOCAL
"""Floats of scalar scratch per lane (PK modes and an output's state; ``_WL``: the infusion
weights over the modes' rates)."""
_N_LI = 7  # per-lane integers: patient, breakpoint, next output, next and last life event,
# last segment, phase
_LANE_INTS = 3 * N_LOCAL + _N_LI

# Lane phases between steps.
_NEED_PATIENT, _SEGMENT_START, _SEGMENT, _STEPPING, _IDLE = 0, 1, 2, 3, 4


@nb.njit(**_JIT)
def _lane_losses(Y, C, U, CCL, SCL, step, DL, DEN, KZ, lanes):
    """Every lane's step times loss rate ``DL``, the implicit stages' factor ``DEN`` and stage 0
    (``KZ``) from the states ``Y`` (ARK4(3)7L[2]SA1 as in ``fast._integrate_one``)."""
    for la in range(lanes):
        d = _LOSS_RATES(
            _GET_NL(Y, 0, la),
            _GET_CONC(C, 0, la),
            _GET_U(U, 0, la),
            _GET_CC(CCL, la),
            _GET_SC(SCL, la),
        )
        _PUT_NL(DL, 0, la, d)
    for i in range(N_NL):
        for la in range(lanes):
            r = i * LANES + la
            dl = step[la] * max(DL[r], 0.0)
            DL[r] = dl
            DEN[r] = 1.0 / (1.0 + _ARK_GAMMA * dl)
            KZ[r] = Y[r]


def _stage_function(s: int) -> nb.core.dispatcher.Dispatcher:
    """``stage(Y, KF, KZ, DL, DEN, step, Z, lanes)``: every lane's stage ``s`` values into
    ``Z``, the sums written out (:func:`_sum_source`)."""
    acc, stiff = _sum_source(_ARK_AE[s, :s], "KF"), _sum_source(_ARK_AD[s, :s], "KZ")
    src = (
        "def stage(Y, KF, KZ, DL, DEN, step, Z, lanes):\n"
        "    n = N_NL * lanes\n"
        "    for i in range(N_NL):\n"
        "        for la in range(lanes):\n"
        "            r = i * lanes + la\n"
        f"            acc = {acc}\n"
        f"            stiff = {stiff}\n"
        "            Z[r] = fma(-DL[r], stiff, fma(step[la], acc, Y[r])) * DEN[r]\n"
    )
    return _compiled(src, "stage", {"N_NL": N_NL, "fma": fma}, inline=False)


_STAGE1, _STAGE2, _STAGE3, _STAGE4, _STAGE5, _STAGE6 = (
    _stage_function(s) for s in range(1, _N_STAGES)
)


def _error_function() -> nb.core.dispatcher.Dispatcher:
    """``error(Y, YS, KF, DEN, step, rtol, atol, ERR, TOT, lanes)``: every lane's step result
    ``YS``, error estimate ``ERR`` (in tolerances) and the sum ``TOT`` of absolute results and
    errors (not finite: the step failed); the sums written out as in :func:`_stage_function`."""
    acc, est = _sum_source(_ARK_B, "KF"), _sum_source(_ARK_E, "KF")
    src = (
        "def error(Y, YS, KF, DEN, step, rtol, atol, ERR, TOT, lanes):\n"
        "    n = N_NL * lanes\n"
        "    for la in range(lanes):\n"
        "        ERR[la] = 0.0\n"
        "        TOT[la] = 0.0\n"
        "    for i in range(N_NL):\n"
        "        for la in range(lanes):\n"
        "            r = i * lanes + la\n"
        "            y = Y[r]\n"
        f"            ys = fma(step[la], {acc}, y)\n"
        "            YS[r] = ys\n"
        "            scale = atol[i] + rtol[i] * max(abs(y), abs(ys))\n"
        f"            e_abs = abs(step[la] * ({est}) * DEN[r])\n"
        "            TOT[la] += e_abs + abs(ys)\n"
        "            ERR[la] = max(ERR[la], e_abs / scale)\n"
    )
    return _compiled(src, "error", {"N_NL": N_NL, "fma": fma}, inline=False)


_LANE_ERROR = _error_function()


@nb.njit(**_JIT)
def _lane_pk(c, step, ZS, ZR, LAM, W, WL, U, VK, VNK, TOUM, DRUG, ON, o, ZS1, ZR1, C, SUM, lanes):
    """Every lane's PK modes ``c * step`` hours into the step (``ZS1``, ``ZR1``, exact as in
    :func:`ketadur.engine.fast._pk_advance`) and its unbound effect-site uM (``C``; 0 in a lane
    without drug), for the modes ``ON`` (those some lane advances; in the others a mode left out
    is zero). ``W``/``WL`` are :func:`ketadur.engine.fast._infusion_weights`, ``VK``/``VNK`` the
    effect-site rows of the modes' matrix, ``SUM`` scratch."""
    for k in range(4 * lanes):
        SUM[k] = 0.0
    for m in range(N_LOCAL):
        if not ON[o + m]:
            continue
        for la in range(lanes):
            r = m * lanes + la
            h = c * step[la]
            x = LAM[r] * h
            e = pk_exp(x)
            u0 = U[la]
            u1 = U[lanes + la]
            q = infusion_gain(x, e, h, W[r], WL[r])
            inf_la = (u0 != 0.0) | (u1 != 0.0)
            zs = fma(e, ZS[r], q * u0) if inf_la else e * ZS[r]
            zr = fma(e, ZR[r], q * u1) if inf_la else e * ZR[r]
            ZS1[r] = zs
            ZR1[r] = zr
            SUM[la] = fma(VK[r], zs, SUM[la])
            SUM[lanes + la] = fma(VK[r], zr, SUM[lanes + la])
            SUM[2 * lanes + la] = fma(VNK[r], zs, SUM[2 * lanes + la])
            SUM[3 * lanes + la] = fma(VNK[r], zr, SUM[3 * lanes + la])
    for k in range(4):
        for la in range(lanes):
            C[k * lanes + la] = SUM[k * lanes + la] * TOUM[la] if DRUG[la] != 0.0 else 0.0


@nb.njit(**_JIT)
def _lane_rhs(Y, C, U, CCL, SCL, F, lanes):
    """Right-hand side of every lane: the states ``Y`` (rows) into ``F``. (Offsets into the
    arrays are taken by the caller as slices: an index that might be negative, as a runtime
    offset would be, keeps the compiler from vectorising. ``lanes`` is :data:`LANES` passed at
    run time: a loop of 16 known iterations is unrolled before it can be vectorised, and the
    unrolled code cannot check at run time that its loads and stores do not overlap.)"""
    for la in range(lanes):
        d = _DERIVATIVES(
            _GET_NL(Y, 0, la), _GET_CONC(C, 0, la), _GET_U(U, 0, la), _GET_CC(CCL, la),
            _GET_SC(SCL, la),
        )  # fmt: skip
        _PUT_NL(F, 0, la, d)


_N_LV = 18
"""Rows of per-lane floats (``LV``): the lane's step, time, next step size, target, segment
end, log of the last error, mg/L to unbound uM, drug present, next output time, active, needs
attention, accepted, time after the step, steps tried, step tried, target hit, drug gone, and
needs scalar work after the step."""
(_STEP, _T, _H, _TARGET, _TSEG, _LOGE, _TOUM, _DRUG, _NEXT_OUT, _ACTIVE, _ATTN, _ACC, _TNEW,
 _NSTEPS, _HTRY, _HIT, _GONE, _FLAG) = range(_N_LV)  # fmt: skip


@nb.njit(**_JIT)
def _lane_prestep(LV, max_step, ZSV, ZRV, VKV, VNKV, WV, U, C, ON, lanes):
    """Every active lane's trial step (and whether it reaches the lane's target) and the unbound
    effect-site uM ``C`` at its start (as
    :func:`ketadur.engine.fast._mode_conc`: the modes a lane does not advance are zero, and those
    the effect sites do not see have zero weight, so summing every mode gives the same bits);
    ``ON``: the PK modes some lane with drug advances, then those of them some lane's effect
    sites see (the only ones the inner stages need, as in the scalar engine)."""
    step_, t_, h_, target_ = LV[_STEP], LV[_T], LV[_H], LV[_TARGET]
    toum_, drug_, active_, htry_ = LV[_TOUM], LV[_DRUG], LV[_ACTIVE], LV[_HTRY]
    hit_ = LV[_HIT]
    for la in range(lanes):
        htry_[la] = min(h_[la], max_step)
    for la in range(lanes):
        hit_[la] = 1.0 if t_[la] + htry_[la] >= target_[la] else 0.0
    for la in range(lanes):
        step = target_[la] - t_[la] if hit_[la] != 0.0 else htry_[la]
        step_[la] = step if active_[la] != 0.0 else 0.0
    for k in range(4):  # each lane's sum over the modes in order, the modes outermost
        vk = VKV if k < 2 else VNKV
        z = ZSV if k % 2 == 0 else ZRV
        ck = C[k * lanes : (k + 1) * lanes]
        for la in range(lanes):
            ck[la] = 0.0
        for m in range(N_LOCAL):
            vkm = vk[m * lanes : (m + 1) * lanes]
            zm = z[m * lanes : (m + 1) * lanes]
            for la in range(lanes):
                ck[la] = fma(vkm[la], zm[la], ck[la])
        for la in range(lanes):
            ck[la] = ck[la] * toum_[la] if drug_[la] != 0.0 else 0.0
    for m in range(N_LOCAL):
        zs = ZSV[m * lanes : (m + 1) * lanes]
        zr = ZRV[m * lanes : (m + 1) * lanes]
        w = WV[m * lanes : (m + 1) * lanes]
        vk = VKV[m * lanes : (m + 1) * lanes]
        vnk = VNKV[m * lanes : (m + 1) * lanes]
        on = 0  # integer reductions, without branches: they vectorise
        seen = 0
        for la in range(lanes):
            infusing = (U[la] != 0.0) | (U[lanes + la] != 0.0)
            live = (zs[la] != 0.0) | (zr[la] != 0.0) | (infusing & (w[la] != 0.0))
            on |= live & (drug_[la] != 0.0)
            seen |= (vk[la] != 0.0) | (vnk[la] != 0.0)
        ON[m] = on != 0
        ON[N_LOCAL + m] = (on != 0) & (seen != 0)


@nb.njit(**_JIT)
def _lane_accept(LV, ERR, TOT, lanes):
    """Every lane's verdict on its step (``_ACC``; a step whose error is not finite fails), its
    end time, and ``_FLAG`` for the lanes that need scalar work before the states move on (a
    rejected step, or outputs inside an accepted one); returns how many do."""
    step_, t_, target_ = LV[_STEP], LV[_T], LV[_TARGET]
    active_, acc_, tnew_, hit_ = LV[_ACTIVE], LV[_ACC], LV[_TNEW], LV[_HIT]
    nsteps_, next_out_, flag_ = LV[_NSTEPS], LV[_NEXT_OUT], LV[_FLAG]
    for la in range(lanes):
        e = ERR[la]
        ERR[la] = e if TOT[la] < np.inf else np.nan
    for la in range(lanes):
        tnew_[la] = target_[la] if hit_[la] != 0.0 else t_[la] + step_[la]
    for la in range(lanes):
        acc_[la] = 1.0 if (active_[la] != 0.0) & (ERR[la] <= 1.0) else 0.0
    for la in range(lanes):
        nsteps_[la] += active_[la]
    n = 0
    for la in range(lanes):
        busy = (acc_[la] == 0.0) | (next_out_[la] < tnew_[la])
        f = (active_[la] != 0.0) & busy
        flag_[la] = 1.0 if f else 0.0
        n += f
    return n


@nb.njit(**_JIT)
def _lane_update(LV, Y, YS, ZSV, ZRV, ZS1V, ZR1V, ON, SIZEV, U, MASK, B, lanes):
    """Every accepted lane's states (a negligible one set to zero, as
    :data:`ketadur.engine.fast._NEGLIGIBLE_STATE` says) and time moved to the step's end, its PK
    modes too, with the drug declared gone and decayed modes dropped as
    :func:`ketadur.engine.fast._drug_present` and :func:`~ketadur.engine.fast._active_modes` do
    (``B``: scratch of three rows of lanes).
    Every loop runs over lanes, with its choices as selects of values loaded beforehand (a load
    in one branch of a choice, a loop over modes inside, or a short-circuit ``and`` keeps the
    compiler from vectorising it)."""
    acc_, t_, tnew_, drug_, gone_ = LV[_ACC], LV[_T], LV[_TNEW], LV[_DRUG], LV[_GONE]
    for i in range(N_NL):
        y, ys = Y[i * lanes : (i + 1) * lanes], YS[i * lanes : (i + 1) * lanes]
        for la in range(lanes):
            new, old = ys[la], y[la]  # both loaded: a load in one branch does not vectorise
            new = 0.0 if abs(new) < _NEGLIGIBLE_STATE else new  # as in fast._integrate_one
            y[la] = new if acc_[la] != 0.0 else old
    for la in range(lanes):
        new, old = tnew_[la], t_[la]
        t_[la] = new if acc_[la] != 0.0 else old
    upd = B[2 * lanes : 3 * lanes]  # 1: this lane's PK modes move on
    for la in range(lanes):
        upd[la] = 1.0 if (acc_[la] != 0.0) & (drug_[la] != 0.0) else 0.0
    for m in range(N_LOCAL):  # one array written per loop, so that the compiler vectorises it
        o = m * lanes
        zs, zr = ZSV[o : o + lanes], ZRV[o : o + lanes]
        if ON[m]:
            zs1, zr1 = ZS1V[o : o + lanes], ZR1V[o : o + lanes]
            for la in range(lanes):
                new, old = zs1[la], zs[la]
                zs[la] = new if upd[la] != 0.0 else old
            for la in range(lanes):
                new, old = zr1[la], zr[la]
                zr[la] = new if upd[la] != 0.0 else old
        else:
            for la in range(lanes):
                zs[la] = 0.0 if upd[la] != 0.0 else zs[la]
            for la in range(lanes):
                zr[la] = 0.0 if upd[la] != 0.0 else zr[la]
    bound = B[0:lanes]  # the drug is gone: every decaying mode below 1e-12 in all
    for la in range(lanes):
        bound[la] = 0.0
    for m in range(N_LOCAL):
        o = m * lanes
        size, zs, zr = SIZEV[o : o + lanes], ZSV[o : o + lanes], ZRV[o : o + lanes]
        for la in range(lanes):
            s = size[la]
            bound[la] += s * (abs(zs[la]) + abs(zr[la])) if s > 0.0 else 0.0
    keep = B[lanes : 2 * lanes]  # 0: this lane's decaying modes may be dropped
    for la in range(lanes):
        infusing = (U[la] != 0.0) | (U[lanes + la] != 0.0)
        free = (upd[la] != 0.0) & ~infusing
        gone_[la] = 1.0 if free & ~(bound[la] >= 1e-12) else 0.0
        keep[la] = 0.0 if free else 1.0
    for m in range(N_LOCAL):  # modes dropped: all decaying ones if gone, else those below 1e-13
        o = m * lanes
        size, zs, zr, mask = (
            SIZEV[o : o + lanes],
            ZSV[o : o + lanes],
            ZRV[o : o + lanes],
            MASK[o : o + lanes],
        )
        for la in range(lanes):
            s = size[la]
            small = s * (abs(zs[la]) + abs(zr[la])) < 1e-13
            drop = (keep[la] == 0.0) & (s > 0.0) & ((gone_[la] != 0.0) | small)
            mask[la] = 1.0 if drop else 0.0
    for r in range(N_LOCAL * lanes):
        ZSV[r] = 0.0 if MASK[r] != 0.0 else ZSV[r]
    for r in range(N_LOCAL * lanes):
        ZRV[r] = 0.0 if MASK[r] != 0.0 else ZRV[r]
    for la in range(lanes):
        drug_[la] = 0.0 if gone_[la] != 0.0 else drug_[la]


@nb.njit(**_JIT)
def _lane_control(LV, ERR, lanes):
    """The next step size of every accepted lane (the PI controller of
    :func:`ketadur.engine.fast._integrate_one`); a lane that reached its target needs attention."""
    acc_, step_, loge_, h_ = LV[_ACC], LV[_STEP], LV[_LOGE], LV[_H]
    hit_, htry_, attn_ = LV[_HIT], LV[_HTRY], LV[_ATTN]
    for la in range(lanes):
        if acc_[la] == 0.0:
            continue
        log_e = log(max(ERR[la], 1e-10))
        grow = _PI_SAFETY * exp(_PI_BETA * loge_[la] - _PI_ALPHA * log_e)
        h = step_[la] * min(5.0, max(0.1, grow))
        loge_[la] = max(log_e, _LOG_ERR_OLD_FLOOR)
        if hit_[la] != 0.0:
            h = max(h, htry_[la])
            attn_[la] = 1.0
        h_[la] = h


@nb.njit(**_JIT, inline="always")
def _gather(ZV, la, z):
    """Lane ``la``'s PK modes from lane layout into ``z``."""
    for m in range(N_LOCAL):
        z[m] = ZV[m * LANES + la]


@nb.njit(**_JIT, inline="always")
def _scatter(z, ZV, la):
    """``z`` into lane ``la``'s PK modes in lane layout."""
    for m in range(N_LOCAL):
        ZV[m * LANES + la] = z[m]


@nb.njit(**_JIT, _nrt=False)
def _integrate_lanes(
    taken, pkc_rows, cc_rows, sc_rows, lam, v, v_inv, bp_t, bp_u, jptr, j_kind,
    j_value, j_delta, le_ptr, le_t, le_points, y0, t_start, t_end, t_out, codes, rtol, atol,
    max_step, out, y_end, steps, patients, Y, YS, DL, DEN, KF, KZ, C, U, CCL, SCL, ERR, TOT, LV,
    lane_work, lane_iwork, ZSV, ZRV, ZS1V, ZR1V, LAMV, WV, WLV, VKV, VNKV, SIZEV, MASK, SUMV,
    mode_on, PKCL,
):  # fmt: skip
    """Integrate patients listed in ``patients`` (indices into the batch arrays of
    :func:`ketadur.engine.fast.integrate_batch`, whose arguments these are), :data:`LANES` at a
    time, each lane taking the next patient when its own is done: the next position of
    ``patients`` not yet taken, counted in ``taken[0]``, which lane groups running in other
    threads share (:func:`~ketadur.engine.intrinsics.fetch_add`). The arrays after
    ``patients`` are scratch (:func:`_lane_group` allocates them). Fills ``out``, ``y_end``
    and ``steps`` (-1: the step size collapsed) of those patients.

    Each pass steps every active lane once: the trial steps, the stages, the error estimates,
    the verdicts and the step-size control in lane loops (vectorised); only a lane that needs it
    (a new patient or segment, an event, an output, a rejected step) runs scalar code."""
    lanes = LV.shape[1]  # LANES, as a number the compiler does not know: see _lane_rhs
    step_, t_, h_, target_, tseg_ = LV[_STEP], LV[_T], LV[_H], LV[_TARGET], LV[_TSEG]
    loge_, toum_, drug_, next_out_ = LV[_LOGE], LV[_TOUM], LV[_DRUG], LV[_NEXT_OUT]
    active_, attn_, acc_, tnew_ = LV[_ACTIVE], LV[_ATTN], LV[_ACC], LV[_TNEW]
    nsteps_, flag_ = LV[_NSTEPS], LV[_FLAG]
    nl = N_NL
    n_bp = bp_t.size
    pk_out = _needs_pk(codes)
    n_patients = patients.size
    s0 = 3 * N_LOCAL  # lane integers after adv, obs, seen: see _N_LI
    LV[:] = 0.0
    for la in range(LANES):
        lane_iwork[la, s0 + 6] = _NEED_PATIENT
        attn_[la] = 1.0
    for a in (Y, YS, DL, DEN, KF, KZ, C, U, CCL, SCL, ZSV, ZRV, ZS1V, ZR1V):
        a[:] = 0.0
    while True:
        # ------------------------------------------- lanes that need attention, lane by lane
        for la in range(LANES):
            if attn_[la] == 0.0:
                continue
            lw = lane_work[la]
            li = lane_iwork[la]
            zs = lw[0:N_LOCAL]
            zr = lw[N_LOCAL : 2 * N_LOCAL]
            zs1 = lw[2 * N_LOCAL : 3 * N_LOCAL]
            zr1 = lw[3 * N_LOCAL : 4 * N_LOCAL]
            w = lw[4 * N_LOCAL : 5 * N_LOCAL]
            wl = lw[_WL : _WL + N_LOCAL]
            size = lw[5 * N_LOCAL : 6 * N_LOCAL]
            y_l = lw[8 * N_LOCAL : 8 * N_LOCAL + nl]
            conc = lw[8 * N_LOCAL + 6 * nl : 8 * N_LOCAL + 6 * nl + 4]
            plasma = lw[8 * N_LOCAL + 6 * nl + 4 : 8 * N_LOCAL + 6 * nl + 6]
            sig = lw[8 * N_LOCAL + 6 * nl + 6 : _WL]
            adv = li[0:N_LOCAL]
            obs = li[N_LOCAL : 2 * N_LOCAL]
            seen = li[2 * N_LOCAL : 3 * N_LOCAL]
            _gather(ZSV, la, zs)
            _gather(ZRV, la, zr)
            phase = li[s0 + 6]
            if phase == _STEPPING:
                phase = _SEGMENT  # the step reached its target
            while phase != _STEPPING and phase != _IDLE:
                if phase == _NEED_PATIENT:
                    k = fetch_add(taken, 0, 1)
                    if k >= n_patients:
                        phase = _IDLE
                        break
                    p = patients[k]
                    li[s0] = p
                    for f in range(_N_PKC):
                        PKCL[f * LANES + la] = pkc_rows[p, f]
                    pkc = _GET_PKC(PKCL, la)
                    toum_[la] = pkc.fu * 1000.0 / pkc.mw_k
                    for f in range(_N_CC):
                        CCL[f * LANES + la] = cc_rows[p, f]
                    for f in range(_N_SC):
                        SCL[f * LANES + la] = sc_rows[p, f]
                    _mode_weights(v[p], lam[p], size, seen)
                    _infusion_weights(v_inv[p], lam[p], w, wl)
                    for m in range(N_LOCAL):
                        r = m * LANES + la
                        LAMV[r] = lam[p, m]
                        WV[r] = w[m]
                        WLV[r] = wl[m]
                        VKV[r] = v[p, _CEK, m]
                        VNKV[r] = v[p, _CENK, m]
                        SIZEV[r] = size[m]
                    for i in range(nl):
                        Y[i * LANES + la] = y0[p, 2 * N_LOCAL + i]
                    for m in range(N_LOCAL):
                        zs[m] = 0.0
                        zr[m] = 0.0
                        for k in range(N_LOCAL):
                            zs[m] += v_inv[p, m, k] * y0[p, k]
                            zr[m] += v_inv[p, m, k] * y0[p, N_LOCAL + k]
                    b = 0
                    for k in range(n_bp):
                        if bp_t[k] <= t_start:
                            b = k
                    li[s0 + 1] = b
                    i_out = 0
                    while i_out < t_out.size and t_out[i_out] < t_start:
                        i_out += 1
                    li[s0 + 2] = i_out
                    i_le = le_ptr[p]
                    while i_le < le_ptr[p + 1] and le_t[i_le] < t_start:
                        i_le += 1
                    li[s0 + 3] = i_le
                    li[s0 + 4] = le_ptr[p + 1]
                    nsteps_[la] = 0.0
                    h_[la] = 0.01
                    loge_[la] = _LOG_ERR_OLD_FLOOR
                    t_[la] = t_start
                    drug_[la] = 1.0
                    phase = _SEGMENT_START
                p = li[s0]
                b = li[s0 + 1]
                t = t_[la]
                if phase == _SEGMENT_START:
                    if bp_t[b] == t and t < t_end:
                        for j in range(jptr[b], jptr[b + 1]):
                            if j_kind[j] == JUMP_DOSE:
                                _apply_dose(zs, zr, v_inv[p], j_delta[p, j])
                                drug_[la] = 1.0
                                h_[la] = 0.01
                            elif j_kind[j] == JUMP_SESSION:
                                y9 = Y[9 * LANES + la]
                                jump = _SESSION(
                                    y9, Y[4 * LANES + la], j_value[p, j], _GET_SC(SCL, la)
                                )
                                Y[9 * LANES + la] = y9 + jump
                            else:
                                Y[10 * LANES + la] += j_value[p, j]
                    u = bp_u[p, b]
                    for k in range(N_IN):
                        U[k * LANES + la] = u[k]
                    if u[0] != 0.0 or u[1] != 0.0:
                        drug_[la] = 1.0
                    if drug_[la] != 0.0:
                        _active_modes(zs, zr, size, seen, w, u, adv, obs, zs1, zr1)
                    last = b + 1 >= n_bp or bp_t[b + 1] >= t_end
                    li[s0 + 5] = last
                    tseg_[la] = t_end if last else bp_t[b + 1]
                    phase = _SEGMENT
                # _SEGMENT: at a breakpoint-free time t inside (or at the end of) the segment
                last = li[s0 + 5]
                t_seg = tseg_[la]
                i_le = li[s0 + 3]
                le_stop = li[s0 + 4]
                while i_le < le_stop and le_t[i_le] == t and t < t_end:
                    Y[10 * LANES + la] += le_points[i_le]
                    i_le += 1
                li[s0 + 3] = i_le
                i_out = li[s0 + 2]
                if i_out < t_out.size and t_out[i_out] == t and (t < t_seg or last):
                    for i in range(nl):
                        y_l[i] = Y[i * LANES + la]
                    pkc, cc, sc = _GET_PKC(PKCL, la), _GET_CC(CCL, la), _GET_SC(SCL, la)
                    u = bp_u[p, b]
                    while i_out < t_out.size and t_out[i_out] == t and (t < t_seg or last):
                        _record(y_l, zs, zr, v[p], u, pkc, cc, sc, codes, out[p, i_out], conc,
                                plasma, sig, pk_out)  # fmt: skip
                        i_out += 1
                    li[s0 + 2] = i_out
                if t >= t_seg:
                    if last:
                        for k in range(N_LOCAL):
                            xs = 0.0
                            xr = 0.0
                            for m in range(N_LOCAL):
                                xs += v[p, k, m] * zs[m]
                                xr += v[p, k, m] * zr[m]
                            y_end[p, k] = xs
                            y_end[p, N_LOCAL + k] = xr
                        for i in range(nl):
                            y_end[p, 2 * N_LOCAL + i] = Y[i * LANES + la]
                        steps[p] = int(nsteps_[la])
                        phase = _NEED_PATIENT
                    else:
                        li[s0 + 1] = b + 1
                        phase = _SEGMENT_START
                    continue
                target = t_seg
                if i_le < le_stop and le_t[i_le] < target:
                    target = le_t[i_le]
                target_[la] = target
                next_out_[la] = t_out[i_out] if i_out < t_out.size else np.inf
                phase = _STEPPING
            li[s0 + 6] = phase
            _scatter(zs, ZSV, la)
            _scatter(zr, ZRV, la)
            attn_[la] = 0.0
            active_[la] = 1.0 if phase == _STEPPING else 0.0
        n_active = 0.0
        for la in range(LANES):
            n_active += active_[la]
        if n_active == 0.0:
            break
        # ------------------------------------------------------------ every lane, vectorised
        # ARK4(3)7L[2]SA1 as in _integrate_one: the losses (implicit part), stage 0.
        _lane_prestep(LV, max_step, ZSV, ZRV, VKV, VNKV, WV, U, C, mode_on, lanes)
        _lane_losses(Y, C, U, CCL, SCL, step_, DL, DEN, KZ, lanes)
        _lane_rhs(Y, C, U, CCL, SCL, KF, lanes)
        for s in range(1, _N_STAGES):
            Z = KZ[s * _NL :]
            if s == 1:
                _STAGE1(Y, KF, KZ, DL, DEN, step_, Z, lanes)
            elif s == 2:
                _STAGE2(Y, KF, KZ, DL, DEN, step_, Z, lanes)
            elif s == 3:
                _STAGE3(Y, KF, KZ, DL, DEN, step_, Z, lanes)
            elif s == 4:
                _STAGE4(Y, KF, KZ, DL, DEN, step_, Z, lanes)
            elif s == 5:
                _STAGE5(Y, KF, KZ, DL, DEN, step_, Z, lanes)
            else:
                _STAGE6(Y, KF, KZ, DL, DEN, step_, Z, lanes)
            # the exact PK at the stage's time (the last, c = 1, is the step's end)
            inner = s < _N_STAGES - 1
            _lane_pk(
                _ARK_C[s] if inner else 1.0, step_, ZSV, ZRV, LAMV, WV, WLV, U, VKV, VNKV, toum_,
                drug_, mode_on, N_LOCAL if inner else 0, ZS1V, ZR1V, C, SUMV, lanes,
            )  # fmt: skip
            _lane_rhs(KZ[s * _NL :], C, U, CCL, SCL, KF[s * _NL :], lanes)
        _LANE_ERROR(Y, YS, KF, DEN, step_, rtol, atol, ERR, TOT, lanes)
        # --------------------------- rejected steps and outputs inside steps, lane by lane
        if _lane_accept(LV, ERR, TOT, lanes) != 0.0:
            for la in range(LANES):
                if flag_[la] == 0.0:
                    continue
                li = lane_iwork[la]
                p = li[s0]
                step = step_[la]
                if acc_[la] == 0.0:
                    err = ERR[la]
                    h = step * max(0.2, 0.9 * err ** (-0.25))
                    h_[la] = h
                    if h < 1e-10:
                        steps[p] = -1
                        li[s0 + 6] = _NEED_PATIENT
                        active_[la] = 0.0
                        attn_[la] = 1.0
                    continue
                # outputs inside the step, interpolated (fast._dense_output)
                lw = lane_work[la]
                zs, zr = lw[0:N_LOCAL], lw[N_LOCAL : 2 * N_LOCAL]
                w = lw[4 * N_LOCAL : 5 * N_LOCAL]
                wl = lw[_WL : _WL + N_LOCAL]
                adv = li[0:N_LOCAL]
                u = bp_u[p, li[s0 + 1]]
                n_adv = 0
                if pk_out:
                    _gather(ZSV, la, zs)
                    _gather(ZRV, la, zr)
                    infusing = u[0] != 0.0 or u[1] != 0.0
                    for m in range(N_LOCAL):
                        if zs[m] != 0.0 or zr[m] != 0.0 or (infusing and w[m] != 0.0):
                            adv[n_adv] = m
                            n_adv += 1
                y_l = lw[8 * N_LOCAL : 8 * N_LOCAL + nl]
                ys_l = lw[8 * N_LOCAL + nl : 8 * N_LOCAL + 2 * nl]
                f0_l = lw[8 * N_LOCAL + 2 * nl : 8 * N_LOCAL + 3 * nl]
                f1_l = lw[8 * N_LOCAL + 3 * nl : 8 * N_LOCAL + 4 * nl]
                dl_l = lw[8 * N_LOCAL + 4 * nl : 8 * N_LOCAL + 5 * nl]
                yo_l = lw[8 * N_LOCAL + 5 * nl : 8 * N_LOCAL + 6 * nl]
                conc = lw[8 * N_LOCAL + 6 * nl : 8 * N_LOCAL + 6 * nl + 4]
                plasma = lw[8 * N_LOCAL + 6 * nl + 4 : 8 * N_LOCAL + 6 * nl + 6]
                sig = lw[8 * N_LOCAL + 6 * nl + 6 : _WL]
                for i in range(nl):
                    r = i * LANES + la
                    y_l[i] = Y[r]
                    ys_l[i] = YS[r]
                    f0_l[i] = KF[r]
                    dl_l[i] = DL[r]
                for k in range(4):
                    conc[k] = C[k * LANES + la]
                pkc, cc, sc = _GET_PKC(PKCL, la), _GET_CC(CCL, la), _GET_SC(SCL, la)
                _RHS(ys_l, conc, u, cc, sc, f1_l)
                zs_o = lw[6 * N_LOCAL : 7 * N_LOCAL]
                zr_o = lw[7 * N_LOCAL : 8 * N_LOCAL]
                t = t_[la]
                t_new = tnew_[la]
                i_out = li[s0 + 2]
                while i_out < t_out.size and t_out[i_out] < t_new:
                    _dense_output(
                        t_out[i_out] - t, step, y_l, ys_l, f0_l, f1_l, dl_l, zs, zr, lam[p],
                        w, wl, u, drug_[la] != 0.0 and pk_out, adv, n_adv, yo_l, zs_o, zr_o,
                    )  # fmt: skip
                    _record(
                        yo_l, zs_o, zr_o, v[p], u, pkc, cc, sc, codes, out[p, i_out], conc,
                        plasma, sig, pk_out,
                    )  # fmt: skip
                    i_out += 1
                li[s0 + 2] = i_out
                next_out_[la] = t_out[i_out] if i_out < t_out.size else np.inf
        # ------------------------------ accepted steps: states, PK and step size, vectorised
        _lane_update(LV, Y, YS, ZSV, ZRV, ZS1V, ZR1V, mode_on, SIZEV, U, MASK, SUMV, lanes)
        _lane_control(LV, ERR, lanes)
    return 0


@nb.njit(**_JIT)
def _lane_group(
    taken, pkc_rows, cc_rows, sc_rows, lam, v, v_inv, bp_t, bp_u, jptr, j_kind,
    j_value, j_delta, le_ptr, le_t, le_points, y0, t_start, t_end, t_out, codes, rtol, atol,
    max_step, out, y_end, steps, patients,
):  # fmt: skip
    """:func:`_integrate_lanes` with its scratch."""
    nl = N_NL * LANES
    nm = N_LOCAL * LANES
    _integrate_lanes(
        taken, pkc_rows, cc_rows, sc_rows, lam, v, v_inv, bp_t, bp_u, jptr, j_kind,
        j_value, j_delta, le_ptr, le_t, le_points, y0, t_start, t_end, t_out, codes, rtol, atol,
        max_step, out, y_end, steps, patients, np.empty(nl), np.empty(nl), np.empty(nl),
        np.empty(nl), np.empty(_N_STAGES * nl), np.empty(_N_STAGES * nl), np.empty(4 * LANES),
        np.empty(N_IN * LANES), np.empty(_N_CC * LANES), np.empty(_N_SC * LANES),
        np.empty(LANES), np.empty(LANES), np.zeros((_N_LV, LANES)),
        np.zeros((LANES, _LANE_FLOATS)), np.zeros((LANES, _LANE_INTS), dtype=np.int64),
        np.zeros(nm), np.zeros(nm), np.zeros(nm), np.zeros(nm), np.zeros(nm), np.zeros(nm),
        np.zeros(nm), np.zeros(nm), np.zeros(nm), np.zeros(nm), np.zeros(nm), np.zeros(4 * LANES),
        np.zeros(2 * N_LOCAL, dtype=np.bool_), np.zeros(_N_PKC * LANES),
    )  # fmt: skip


@nb.njit(**_JIT, parallel=True, nogil=True)
def _integrate_batch_lanes(
    pkc_rows, cc_rows, sc_rows, lam, v, v_inv, bp_t, bp_u, jptr, j_kind, j_value, j_delta,
    le_ptr, le_t, le_points, y0, t_start, t_end, t_out, codes, rtol, atol, max_step, out, y_end,
    steps, patients, n_groups,
):  # fmt: skip
    """``patients`` through ``n_groups`` lane groups (:func:`_lane_group`) in parallel, each
    taking the next patient not yet taken as its lanes free up."""
    taken = np.zeros(1, dtype=np.int64)
    for _ in nb.prange(n_groups):
        _lane_group(
            taken, pkc_rows, cc_rows, sc_rows, lam,
            v, v_inv, bp_t, bp_u, jptr, j_kind, j_value, j_delta, le_ptr, le_t, le_points, y0,
            t_start, t_end, t_out, codes, rtol, atol, max_step, out, y_end, steps, patients,
        )  # fmt: skip


_HILL = CascadeConstants._fields.index("mtor_hill")


def integrate_batch(*args) -> None:
    """:func:`ketadur.engine.fast.integrate_batch` (same arguments; ``out``, ``y_end`` and
    ``steps`` filled in place) in lanes, bit-identical to it. Patients whose mTORC1 Hill
    coefficient is not an integer in [0, 8] go to the scalar engine."""
    cc_rows = args[1]
    hill = cc_rows[:, _HILL]
    in_lanes = (hill == np.floor(hill)) & (hill >= 0.0) & (hill <= 8.0)
    patients = np.flatnonzero(in_lanes).astype(np.int64)
    if patients.size:
        # One lane group per thread (with at least a patient per lane): a group's lanes fall
        # idle one by one once no patient is left, so fewer groups leave fewer idle lanes.
        n_groups = max(1, min(nb.get_num_threads(), patients.size // LANES))
        _integrate_batch_lanes(*args, patients, n_groups)
    rest = np.flatnonzero(~in_lanes)
    if rest.size:
        _integrate_rest(args, rest)


_PER_PATIENT = (0, 1, 2, 3, 4, 5, 7, 10, 11, 15)
"""Positions of :func:`ketadur.engine.fast.integrate_batch`'s per-patient arguments (axis 0)."""


def patients_of(args: tuple, index: NDArray[np.int64]) -> list:
    """The batch ``args`` of :func:`ketadur.engine.fast.integrate_batch` cut down to the
    patients ``index`` (in that order), with fresh ``out``, ``y_end`` and ``steps``."""
    sub = list(args)
    for k in _PER_PATIENT:
        sub[k] = args[k][index]
    le_ptr, le_t, le_points = args[12], args[13], args[14]
    take = np.concatenate(
        [np.arange(le_ptr[i], le_ptr[i + 1]) for i in index] + [np.zeros(0)]
    ).astype(np.int64)
    sub[12] = np.concatenate([[0], np.cumsum(le_ptr[index + 1] - le_ptr[index])]).astype(np.int64)
    sub[13], sub[14] = le_t[take], le_points[take]
    out, y_end, steps = args[-3], args[-2], args[-1]
    sub[-3], sub[-2], sub[-1] = out[index], y_end[index], steps[index]
    return sub


def _integrate_rest(args: tuple, rest: NDArray[np.int64]) -> None:
    """The scalar engine on patients ``rest`` of the batch ``args``, results scattered back."""
    sub = patients_of(args, rest)
    fast.integrate_batch(*sub)
    out, y_end, steps = args[-3], args[-2], args[-1]
    out[rest], y_end[rest], steps[rest] = sub[-3], sub[-2], sub[-1]
