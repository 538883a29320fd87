"""Fast engine: the model compiled with Numba, many patients in parallel, PK solved exactly.

Technique (chosen by measurement, see ``docs/benchmarks.md``):

- the linear PK block is propagated exactly in modal form (:mod:`ketadur.model.pk_modes`), so the
  very fast effect-site equilibration (ke0 ~ 300/h) costs nothing and needs no small steps;
- the cascade and synapse states are integrated by the additive Runge-Kutta pair ARK4(3)7L[2]SA1
  (Kennedy & Carpenter 2019) with a PI step-size controller, one adaptive step per patient. Every
  state's derivative is a production minus a first-order loss (``loss`` in
  :mod:`ketadur.model.kernels`); the loss, frozen at each step's start, is the implicit (L-stable)
  part and costs one division per state, the rest is explicit. The stiffness left once the PK is
  exact is in those losses (glutamate ~2.8/h, ERK 1.6-2.1/h in quiet weeks and faster after a
  dose, BDNF, the acute response), so steps are set by accuracy, not stability. Dormand-Prince
  5(4) with glutamate in Lawson form (until 2026-11-22) kept steps below about 2 hours in quiet
  weeks, held by ERK's stability; ARK4(3)6L[2]SA (until 2026-12-05) took 38 % more steps with
  the same step limit (``docs/benchmarks.md``);
- between doses the fast signalling states sit at quasi-steady values that follow the slow
  states, and there the error estimate sees only part of the error of a long step (a quarter of
  ERK's on a step of 8 hours, a thirtieth on one of 16): the step is therefore at most
  :attr:`FastSettings.max_step_h` (6 hours);
- the fast signalling states (glutamate, BDNF, ERK, DUSP6) relax towards values set by the slow
  states, so their local errors decay instead of accumulating: their tolerances are 5 times
  looser, and glutamate, driven by the exact PK alone, is left out of the step control
  (:class:`FastSettings`);
- the right-hand side is :func:`ketadur.model.kernels.make_kernels` compiled by Numba, i.e. the very
  equations the reference engine integrates; patients run in parallel threads (``prange``). Each
  patient's result depends on that patient alone, so it is identical whatever the thread count or
  batch it runs in. Population batches on the CPU run in :mod:`ketadur.engine.lanes`, 32
  patients side by side, with results identical bit for bit to this integrator's.

Breakpoints (dose, infusion edges, sessions, adjunct, lifestyle and medication changes, life events)
are hit exactly, as in the reference engine. Output times are not: an output inside a step is
interpolated (cubic Hermite for the nonlinear states, linear for a state many relaxation times
stiff over the step, exact for the PK), so the output grid does not change the steps taken, and a
fine grid (hourly curves, say) costs one right-hand side per step rather than a step per output.
Until 2026-12-05 each output time was stepped to: daily outputs forced 9 % of the steps of a year
of weekly maintenance, and they also happened to keep quiet-week steps short, so that weekly
outputs (a trial's visits) met the agreement less well than daily ones (potentiation 5.8e-3
instead of 3e-4 on ``durability_comparison``'s lifestyle arm).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import exp, log
from pathlib import Path
from types import MappingProxyType

import numba as nb
import numpy as np
from numba.np.unsafe.ndarray import to_fixed_tuple
from numpy.typing import NDArray

from ketadur.engine.intrinsics import fma
from ketadur.engine.numba_cache import drop_stale_cache
from ketadur.engine.reference import Span
from ketadur.errors import KetadurInputError
from ketadur.model import pk
from ketadur.model.cascade import CascadeConstants
from ketadur.model.kernels import NONLINEAR_STATES, SIGNALS, make_kernels
from ketadur.model.pk import PKConstants
from ketadur.model.synapse_mood import SynapseConstants
from ketadur.model.system import INPUT_NAMES, OUTPUTS, STATE_NAMES, CompiledModel, Schedule

_MODEL_DIR, _ENGINE_DIR = Path(pk.__file__).parent, Path(__file__).parent
drop_stale_cache(
    [
        *_MODEL_DIR.glob("*.py"),
        *(_ENGINE_DIR / f for f in ("fast.py", "lanes.py", "intrinsics.py")),
    ],
    [_ENGINE_DIR / "__pycache__", _MODEL_DIR / "__pycache__"],
)
_JIT = MappingProxyType({"cache": True, "error_model": "numpy"})
"""Numba options of every kernel here. NumPy's error model: a division by zero gives inf or nan,
which the step control rejects until the patient is reported as failed, instead of raising inside
a parallel batch and losing every patient of it. No fast-math, not even the compiler's own fused
multiply-adds (``contract``): where LLVM fuses depends on the code around an expression, so the
lanes, this integrator, and processes that compiled for another vector width would no longer
give the same bits. The multiply-adds that matter (stage sums, error estimate, exact PK, its
exponential) are written out instead (:func:`ketadur.engine.intrinsics.fma`), the same in every
engine (``docs/benchmarks.md``)."""
_K = make_kernels(nb.njit(**_JIT, inline="always"))
_RHS, _OBSERVE, _SESSION, _LOSS = _K.rhs, _K.observe, _K.session_jump, _K.loss

N_NL = len(NONLINEAR_STATES)
SIGNAL_STATES = NONLINEAR_STATES[:4]
"""The fast signalling states (glutamate, BDNF, ERK, DUSP6), first in the kernel's order."""
N_LOCAL = len(pk.PK_LOCAL)
N_IN = len(INPUT_NAMES)
_N_PKC, _N_CC, _N_SC = (
    len(PKConstants._fields),
    len(CascadeConstants._fields),
    len(SynapseConstants._fields),
)
_CEN = pk.PK_LOCAL.index("central")
_NK = pk.PK_LOCAL.index("norketamine")
_CEK = pk.PK_LOCAL.index("ce_ketamine")
_CENK = pk.PK_LOCAL.index("ce_norketamine")
_ALL_MODES = np.arange(N_LOCAL)

OUTPUT_NAMES: tuple[str, ...] = tuple(OUTPUTS)
"""Outputs the fast engine can report (the same as the reference engine's), in column order."""
_STATE_OUT = {name: i for i, name in enumerate(STATE_NAMES[2 * N_LOCAL :])}

# Output codes: 0-13 nonlinear states, 14 plasma ketamine, 15 plasma norketamine, 20+ signals.
_PLASMA_CODE = 14
assert N_NL <= _PLASMA_CODE
_SIGNAL_CODES = {
    "nmda_occupancy": 20,
    "ampa": 21,
    "trkb": 22,
    "mtorc1": 23,
    "relief": 25,
    "madrs": 26,
    "cadss": 27,
    "sbp_mmhg": 28,
    "plasma_bdnf_ng_per_ml": 29,
}
_STATE_CODE = 40  # 40 + i: state i of the full state vector (original PK coordinates)
JUMP_LIFE_EVENT, JUMP_SESSION, JUMP_DOSE = 0, 1, 2

# ARK4(3)7L[2]SA1 (Kennedy & Carpenter, Appl Numer Math 2019;136:183, as in SUNDIALS' ARKODE
# ARK437L2SA): an explicit and an L-stable, stiffly accurate ESDIRK tableau sharing nodes and
# weights; ``_ARK_E`` is the weights less the embedded third-order ones. Between doses ERK follows
# BDNF - 1, a few hundredths, so BDNF's stage errors come back as ERK's error, one the embedded
# estimate shares and cannot see. The second node here is 0.247 (ARK4(3)6L[2]SA's was 1/2), and
# the explicit second stage, the one an explicit method cannot make second-order, errs four
# times less: on a step of 8 hours in a quiet week ERK's true local error is 12 times smaller,
# and a year of weekly maintenance takes 28 % fewer steps (``docs/benchmarks.md``).
_N_STAGES = 7
_ARK_GAMMA = 1235 / 10000
_ARK_C = np.array([0.0, 247 / 1000, 4276536705230 / 10142255878289, 67 / 200, 3 / 40, 7 / 10, 1.0])
_ARK_AE = np.zeros((7, 7))
_ARK_AE[1, 0] = 247 / 1000
_ARK_AE[2, :2] = [247 / 4000, 2694949928731 / 7487940209513]
_ARK_AE[3, :3] = [
    464650059369 / 8764239774964,
    878889893998 / 2444806327765,
    -952945855348 / 12294611323341,
]
_ARK_AE[4, :4] = [
    476636172619 / 8159180917465,
    -1271469283451 / 7793814740893,
    -859560642026 / 4356155882851,
    1723805262919 / 4571918432560,
]
_ARK_AE[5, :5] = [
    6338158500785 / 11769362343261,
    -4970555480458 / 10924838743837,
    3326578051521 / 2647936831840,
    -880713585975 / 1841400956686,
    -1428733748635 / 8843423958496,
]
_ARK_AE[6, :6] = [
    760814592956 / 3276306540349,
    760814592956 / 3276306540349,
    -47223648122716 / 6934462133451,
    71187472546993 / 9669769126921,
    -13330509492149 / 9695768672337,
    11565764226357 / 8513123442827,
]
_ARK_AI = np.zeros((7, 7))
_ARK_AI[1, :2] = [_ARK_GAMMA, _ARK_GAMMA]
_ARK_AI[2, :3] = [624185399699 / 4186980696204, 624185399699 / 4186980696204, _ARK_GAMMA]
_ARK_AI[3, :4] = [
    1258591069120 / 10082082980243,
    1258591069120 / 10082082980243,
    -322722984531 / 8455138723562,
    _ARK_GAMMA,
]
_ARK_AI[4, :5] = [
    -436103496990 / 5971407786587,
    -436103496990 / 5971407786587,
    -2689175662187 / 11046760208243,
    4431412449334 / 12995360898505,
    _ARK_GAMMA,
]
_ARK_AI[5, :6] = [
    -2207373168298 / 14430576638973,
    -2207373168298 / 14430576638973,
    242511121179 / 3358618340039,
    3145666661981 / 7780404714551,
    5882073923981 / 14490790706663,
    _ARK_GAMMA,
]
_ARK_AI[6, :] = [
    0.0,
    0.0,
    9164257142617 / 17756377923965,
    -10812980402763 / 74029279521829,
    1335994250573 / 5691609445217,
    2273837961795 / 8368240463276,
    _ARK_GAMMA,
]
_ARK_AD = _ARK_AI - _ARK_AE
_ARK_B = _ARK_AI[6].copy()
_ARK_E = _ARK_B - np.array(
    [
        0.0,
        0.0,
        4469248916618 / 8635866897933,
        -621260224600 / 4094290005349,
        696572312987 / 2942599194819,
        1532940081127 / 5565293938103,
        2441 / 20000,
    ]
)


_PI_ALPHA, _PI_BETA = 0.7 / 4, 0.4 / 4
"""Exponents of the PI step-size controller (Gustafsson 1991) for an error estimate of order 4
in the step (the embedded method is of order 3)."""
_PI_TARGET = 0.9**4
"""Error estimate (in tolerances) the controller aims at in smooth stretches: that of an
I-controller with the usual safety factor 0.9, 0.9**4 = 0.66. The PI controller reaches
``err = _PI_SAFETY ** (1 / (alpha - beta))`` there, so its safety factor is derived from the
target. With the factor 0.9 itself (until 2026-12-04) it aimed at 0.9**(1 / 0.075) = 0.245, four
times tighter than the tolerances asked: 25 % more steps for no agreement that was needed
(``docs/benchmarks.md``)."""
_PI_SAFETY = _PI_TARGET ** (_PI_ALPHA - _PI_BETA)
_LOG_ERR_OLD_FLOOR = log(1e-4)
"""log of the smallest previous error estimate the PI controller remembers (and its start), so
that one very accurate step does not let the next grow by the controller's full factor."""


def output_codes(names: tuple[str, ...] | list[str]) -> NDArray[np.int64]:
    """Kernel codes of output ``names`` (each one of :data:`OUTPUT_NAMES`)."""
    codes = []
    for name in names:
        if name in _STATE_OUT:
            codes.append(_STATE_OUT[name])
        elif name == "plasma_ketamine_ng_per_ml":
            codes.append(_PLASMA_CODE)
        elif name == "plasma_norketamine_ng_per_ml":
            codes.append(_PLASMA_CODE + 1)
        elif name in _SIGNAL_CODES:
            codes.append(_SIGNAL_CODES[name])
        else:
            raise KetadurInputError("outputs", f"unknown output; choose from {OUTPUT_NAMES}", name)
    return np.asarray(codes, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class FastSettings:
    """Tolerances of the fast engine's adaptive step and its largest step (hours).

    ``rtol``/``atol`` bound each step's local error estimate on every nonlinear state. The fast
    signalling states (glutamate, BDNF, ERK, DUSP6) relax within hours towards values set by the
    slow states, so their local errors decay instead of accumulating; ``signal_tolerance_factor``
    loosens their tolerances by that factor (1: none). The states in ``uncontrolled`` take no
    part in the step control: glutamate (the default) is driven by the exact PK alone and relaxes
    at about 2.8/h, and its errors reach what matters only through the states it drives (AMPA
    into BDNF and ERK, counter-regulation), whose errors are controlled; it set 64 % of the steps
    and leaving it out takes 18 % fewer steps at the same agreement. ``atol_by_state`` replaces
    ``atol`` for the states named (a vector tolerance, as CVODE takes one): the acute response
    (0-1) decays to nothing within a day of each dose, and tracking its tail to 1e-7 set most
    steps of the first days after a dose; 1e-5 of it is about 1e-4 MADRS points. ERK sets most
    steps now; between doses it sits at 0.02-0.05 (0.1-0.5 after one), where its relative
    tolerance (5e-4) amounts to 1e-5 to 2.5e-5, so an absolute 1e-5 (instead of 5e-7) leaves
    its peaks and the DUSP6 inhibitor's weeks of high ERK under the relative tolerance, and
    takes 6 % fewer steps.
    ``max_step_h`` bounds every step. Between doses the fast signalling states sit at
    quasi-steady values that follow the slow states, and on a long step the error estimate sees
    only part of their error (the explicit stages extrapolate the production that sets them): a
    quarter of ERK's on a step of 8 hours, a thirtieth on one of 16. ERK drives mTORC1 with a
    Hill power of 4, so its error reaches potentiation: with 24 hours, the lifestyle arm of
    ``durability_comparison`` missed the agreement (potentiation 7.6e-3 off); 6 hours keeps it
    at 6.5e-5 for 4 % more steps than 8 hours.
    The defaults meet the 1e-3 agreement with the reference engine on every library arm (worst
    6.3e-4, the DUSP6 inhibitor arms, over ten patients per arm with calibration 2026.12-3); a
    signal factor of 20 took those arms to 1.5e-3 (2026-12-04). ``docs/benchmarks.md`` has the
    measurements."""

    rtol: float = 1e-4
    atol: float = 1e-7
    signal_tolerance_factor: float = 5.0
    max_step_h: float = 6.0
    uncontrolled: tuple[str, ...] = ("glutamate",)
    atol_by_state: tuple[tuple[str, float], ...] = (("erk", 1e-5), ("acute", 1e-5))

    def __post_init__(self) -> None:
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if not (0.0 < value < 1.0):
                raise KetadurInputError(f"fast.{name}", "must lie in (0, 1)", value)
        factor = self.signal_tolerance_factor
        if not 1.0 <= factor <= 1000.0:
            raise KetadurInputError("fast.signal_tolerance_factor", "must lie in [1, 1000]", factor)
        if not self.max_step_h > 0.0:
            raise KetadurInputError("fast.max_step_h", "must be > 0", self.max_step_h)
        for name in self.uncontrolled:
            if name not in SIGNAL_STATES:
                msg = f"must name fast signalling states only, from {SIGNAL_STATES}"
                raise KetadurInputError("fast.uncontrolled", msg, name)
        for name, value in self.atol_by_state:
            if name not in NONLINEAR_STATES:
                msg = f"must name nonlinear states only, from {NONLINEAR_STATES}"
                raise KetadurInputError("fast.atol_by_state", msg, name)
            if not (0.0 < value < 1.0):
                raise KetadurInputError(f"fast.atol_by_state.{name}", "must lie in (0, 1)", value)

    def state_tolerances(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Relative and absolute tolerance of each nonlinear state (kernel order)."""
        scale = np.ones(N_NL)
        scale[: len(SIGNAL_STATES)] = self.signal_tolerance_factor
        rtol, atol = self.rtol * scale, self.atol * scale
        for name, value in self.atol_by_state:
            atol[NONLINEAR_STATES.index(name)] = value
        for name in self.uncontrolled:
            rtol[NONLINEAR_STATES.index(name)] = atol[NONLINEAR_STATES.index(name)] = np.inf
        return rtol, atol


# ------------------------------------------------------------------------------------ kernels


@nb.njit(**_JIT)
def _pkc(row):
    return PKConstants(*to_fixed_tuple(row, _N_PKC))


@nb.njit(**_JIT)
def _cc(row):
    return CascadeConstants(*to_fixed_tuple(row, _N_CC))


@nb.njit(**_JIT)
def _sc(row):
    return SynapseConstants(*to_fixed_tuple(row, _N_SC))


_POW2 = np.ldexp(1.0, np.arange(-1074, 65))
"""2**k for k = -1074..64 (index k + 1074): the scale of :func:`pk_exp`."""
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
"""ln 2 split so that k * _LN2_HI is exact for the k of :func:`pk_exp` (fdlibm's constants)."""


@nb.njit(**_JIT, inline="always")
def pk_exp(x):
    """exp(x) for x <= 64 ln 2 (the PK modes' decay factors, x <= 0), within two units in the
    last place, in plain arithmetic: reduction to r = x - k ln 2 with |r| <= ln 2 / 2, a
    degree-13 Taylor polynomial (truncation below 5e-18; Estrin's scheme, in fused
    multiply-adds), scaled by 2**k from a table. Unlike libm's exp (a call) a compiler can
    vectorise it, so the fast engine's lanes compute the PK's exponentials together; the scalar
    engine uses it too, so that both give the same bits."""
    if x < -745.0:
        return 0.0
    k = np.floor(x * 1.4426950408889634 + 0.5)
    i = min(max(int(k) + 1074, 0), _POW2.size - 1)  # a NaN x gives NaN, not a wild index
    r = fma(-k, _LN2_LO, fma(-k, _LN2_HI, x))
    # Estrin's scheme: the terms in pairs, so that the chain of dependent operations is short
    r2 = r * r
    r4 = r2 * r2
    q0 = fma(r2, fma(r, 1.0 / 6.0, 0.5), 1.0 + r)
    q1 = fma(r2, fma(r, 1.0 / 5040.0, 1.0 / 720.0), fma(r, 1.0 / 120.0, 1.0 / 24.0))
    q2 = fma(r2, fma(r, 1.0 / 39916800.0, 1.0 / 3628800.0), fma(r, 1.0 / 362880.0, 1.0 / 40320.0))
    q3 = fma(r, 1.0 / 6227020800.0, 1.0 / 479001600.0)
    p = fma(r4 * r4, fma(r4, q3, q2), fma(r4, q1, q0))
    return p * _POW2[i]


@nb.njit(**_JIT, inline="always")
def _pk_advance(zs, zr, lam, w, wl, u, h, adv, n_adv, zs_out, zr_out):
    """Exact PK of the modes listed in ``adv`` over ``h`` hours with constant IV rates ``u[0]``
    (S) and ``u[1]`` (R), mg/h. ``w`` is each mode's share of an infusion and ``wl`` that share
    over the mode's rate (:func:`_infusion_weights`): the infusion adds
    ``(exp(lam h) - 1) w / lam`` per mg/h, with no division per step (a division per mode and
    stage, vectorised in the lanes, cost a fifth of their time); near ``lam h = 0`` a series."""
    if u[0] == 0.0 and u[1] == 0.0:  # no infusion running: free decay
        for k in range(n_adv):
            m = adv[k]
            e = pk_exp(lam[m] * h)
            zs_out[m] = e * zs[m]
            zr_out[m] = e * zr[m]
        return
    for k in range(n_adv):
        m = adv[k]
        x = lam[m] * h
        e = pk_exp(x)
        q = infusion_gain(x, e, h, w[m], wl[m])
        zs_out[m] = fma(e, zs[m], q * u[0])
        zr_out[m] = fma(e, zr[m], q * u[1])


@nb.njit(**_JIT, inline="always")
def infusion_gain(x, e, h, w, wl):
    """A mode's amount after ``h`` hours of an infusion of 1 mg/h, from its rate times ``h``
    (``x``), ``e = pk_exp(x)`` and its weights (:func:`_infusion_weights`)."""
    return h * (1.0 + x * (0.5 + x * (1.0 / 6.0))) * w if abs(x) < 1e-5 else (e - 1.0) * wl


@nb.njit(**_JIT, inline="always")
def _infusion_weights(v_inv, lam, w, wl):
    """Per PK mode, constant for the patient: ``w``, its share of an infusion into the central
    compartment, and ``wl = w / lam`` (0 for a mode that does not decay, which takes the series
    of :func:`_pk_advance`)."""
    for m in range(N_LOCAL):
        w[m] = v_inv[m, _CEN]
        wl[m] = w[m] / lam[m] if lam[m] != 0.0 else 0.0


@nb.njit(**_JIT, inline="always")
def _active_modes(zs, zr, size, seen, w, u, adv, obs, zs1, zr1):
    """List the PK modes that can be nonzero over the next step (``adv``: some amplitude, or the
    infusion feeds them) and, of those, the ones the effect-site concentrations see (``obs``);
    return the two counts. The others (an oral route's depots after an infusion, say) stay
    exactly zero, so they are set to zero in the stage buffers ``zs1``/``zr1`` and skipped. A
    decaying mode no input feeds is dropped (set to zero) once its share of the observed
    compartments is below 1e-13 mg or mg/L, a tenth of :func:`_drug_present`'s bound for all of
    them: the effect-site equilibration (~300/h) and distribution modes vanish within hours of an
    infusion, long before the drug does. ``size`` and ``seen`` are :func:`_mode_weights`."""
    infusing = u[0] != 0.0 or u[1] != 0.0
    n_adv = n_obs = 0
    for m in range(N_LOCAL):
        if not infusing and size[m] > 0.0 and size[m] * (abs(zs[m]) + abs(zr[m])) < 1e-13:
            zs[m] = 0.0  # a decayed mode: below a tenth of _drug_present's bound
            zr[m] = 0.0
        if zs[m] != 0.0 or zr[m] != 0.0 or (infusing and w[m] != 0.0):
            adv[n_adv] = m
            n_adv += 1
            if seen[m]:
                obs[n_obs] = m
                n_obs += 1
        else:
            zs1[m] = 0.0
            zr1[m] = 0.0
    return n_adv, n_obs


@nb.njit(**_JIT, inline="always")
def _mode_conc(zs, zr, v, obs, n_obs, to_um, conc):
    """Unbound effect-site uM (S-K, R-K, S-NK, R-NK) into ``conc`` from the ``n_obs`` modes
    listed in ``obs`` (the others being zero); ``to_um`` converts mg/L of ketamine to uM
    unbound."""
    cks = ckr = cnks = cnkr = 0.0
    for k in range(n_obs):
        m = obs[k]
        cks = fma(v[_CEK, m], zs[m], cks)
        ckr = fma(v[_CEK, m], zr[m], ckr)
        cnks = fma(v[_CENK, m], zs[m], cnks)
        cnkr = fma(v[_CENK, m], zr[m], cnkr)
    conc[0] = cks * to_um
    conc[1] = ckr * to_um
    conc[2] = cnks * to_um
    conc[3] = cnkr * to_um


@nb.njit(**_JIT, inline="always")
def _pk_observe(zs, zr, v, pkc, conc, plasma):
    """Unbound effect-site uM (S-K, R-K, S-NK, R-NK) into ``conc``; plasma ketamine and
    norketamine (ng/mL) into ``plasma``."""
    _mode_conc(zs, zr, v, _ALL_MODES, N_LOCAL, pkc.fu * 1000.0 / pkc.mw_k, conc)
    cens = cenr = nks = nkr = 0.0
    for m in range(N_LOCAL):
        cens += v[_CEN, m] * zs[m]
        cenr += v[_CEN, m] * zr[m]
        nks += v[_NK, m] * zs[m]
        nkr += v[_NK, m] * zr[m]
    plasma[0] = (cens + cenr) / pkc.v1_l * 1000.0
    plasma[1] = (nks + nkr) / pkc.v_nk_l * 1000.0 * (pkc.mw_nk / pkc.mw_k)


@nb.njit(**_JIT, inline="always")
def _mode_weights(v, lam, size, seen):
    """Per PK mode, constant for the patient: ``size``, the summed weight of a decaying mode in
    the observed compartments (effect sites, plasma, norketamine; 0 for a mode that does not
    decay), and ``seen``, whether the effect-site concentrations depend on the mode."""
    for m in range(N_LOCAL):
        size[m] = 0.0
        if lam[m] < 0.0:
            size[m] = abs(v[_CEK, m]) + abs(v[_CENK, m]) + abs(v[_CEN, m]) + abs(v[_NK, m])
        seen[m] = v[_CEK, m] != 0.0 or v[_CENK, m] != 0.0


@nb.njit(**_JIT, inline="always")
def _drug_present(zs, zr, size, u):
    """False once no IV input runs and every decaying PK mode is negligible (< 1e-12 mg or mg/L
    in any observed compartment); those modes are then set to zero so PK work can be skipped.
    ``size`` is :func:`_mode_weights`'."""
    if u[0] != 0.0 or u[1] != 0.0:
        return True
    bound = 0.0
    for m in range(N_LOCAL):
        if size[m] > 0.0:
            bound += size[m] * (abs(zs[m]) + abs(zr[m]))
    if bound >= 1e-12:
        return True
    for m in range(N_LOCAL):
        if size[m] > 0.0:
            zs[m] = 0.0
            zr[m] = 0.0
    return False


@nb.njit(**_JIT, inline="always")
def _needs_pk(codes):
    """Whether an output of ``codes`` depends on the drug: a plasma level, a PK state, or a
    signal of the effect-site concentrations (NMDA occupancy, dissociation, blood pressure). The
    other outputs (MADRS, the synaptic states...) are recorded without the PK."""
    for c in range(codes.size):
        code = codes[c]
        if code == _PLASMA_CODE or code == _PLASMA_CODE + 1 or code == 20 or code == 27:
            return True
        if code == 28 or (code >= _STATE_CODE and code < _STATE_CODE + 2 * N_LOCAL):
            return True
    return False


@nb.njit(**_JIT, _nrt=False)
def _record(y, zs, zr, v, u, pkc, cc, sc, codes, row, conc, plasma, sig, pk):
    """The outputs ``codes`` into ``row`` from the nonlinear states ``y`` and, where ``pk``
    (:func:`_needs_pk`), the PK modes; otherwise ``conc`` and ``plasma`` are left as they are
    and the signals computed from them are not among the outputs."""
    if pk:
        _pk_observe(zs, zr, v, pkc, conc, plasma)
    _OBSERVE(y, conc, plasma[0], u, cc, sc, sig)
    for c in range(codes.size):
        code = codes[c]
        if code >= _STATE_CODE + 2 * N_LOCAL:
            row[c] = y[code - _STATE_CODE - 2 * N_LOCAL]
        elif code >= _STATE_CODE:
            k = (code - _STATE_CODE) % N_LOCAL
            z = zs if code - _STATE_CODE < N_LOCAL else zr
            x = 0.0
            for m in range(N_LOCAL):
                x += v[k, m] * z[m]
            row[c] = x
        elif code < N_NL:
            row[c] = y[code]
        elif code < 20:
            row[c] = plasma[code - _PLASMA_CODE]
        else:
            row[c] = sig[code - 20]


_NEGLIGIBLE_STATE = 1e-150
"""Magnitude (in each nonlinear state's own unit) below which a state is set to exactly zero when
a step is accepted, in both fast engines alike. States that only decay once the drug is gone
(glutamate, the acute response) otherwise sink into subnormal numbers (below 2.2e-308) and stay
there, and every operation on a subnormal takes the processor tens to hundreds of cycles: in a
year whose second half has no infusion every step of that half cost five times a step with
drug (``docs/benchmarks.md``). 1e-150 is about the square root of the smallest normal number,
so that products of two states stay normal too, and 140 orders of magnitude below the smallest
absolute tolerance (1e-7): the step control cannot tell such a state from zero, and neither can
anything the model computes from it."""

_HERMITE_STIFFNESS = 2.0
"""Largest step times loss rate (dimensionless) for which a state is interpolated by cubic
Hermite; a stiffer state (ERK in a quiet week, with steps of many hours) is interpolated linearly:
its derivatives at the step's ends measure how fast it returns to its quasi-steady value, not
its course (the cubic overshot ERK by 25 % in a 24-hour step)."""


@nb.njit(**_JIT, inline="always")
def _dense_output(
    dt, step, y, ys, f0, f1, dl, zs, zr, lam, w, wl, u, drug, adv, n_adv, y_o, zs_o, zr_o
):
    """The state ``dt`` hours into an accepted step of ``step`` hours: nonlinear states by cubic
    Hermite interpolation between the step's ends (``y``, ``ys``) and derivatives (``f0``,
    ``f1``), third order like the step's error estimate, or linearly where the step is more
    than :data:`_HERMITE_STIFFNESS` times the state's relaxation time (``dl``: step times loss
    rate); PK modes advanced exactly from the step's start (``zs``, ``zr``) into
    ``zs_o``/``zr_o``. An output time then costs one right-hand side per step that holds it,
    not a step of its own."""
    th = dt / step
    g = 1.0 - th
    h00 = (1.0 + 2.0 * th) * g * g
    h10 = th * g * g * step
    h01 = th * th * (3.0 - 2.0 * th)
    h11 = -th * th * g * step
    for i in range(N_NL):
        if dl[i] <= _HERMITE_STIFFNESS:
            y_o[i] = h00 * y[i] + h01 * ys[i] + h10 * f0[i] + h11 * f1[i]
        else:
            y_o[i] = g * y[i] + th * ys[i]
    for m in range(N_LOCAL):
        zs_o[m] = 0.0
        zr_o[m] = 0.0
    if drug:
        _pk_advance(zs, zr, lam, w, wl, u, dt, adv, n_adv, zs_o, zr_o)


@nb.njit(**_JIT, _nrt=False)
def _apply_dose(zs, zr, v_inv, delta):
    for m in range(N_LOCAL):
        ds = 0.0
        dr = 0.0
        for k in range(N_LOCAL):
            ds += v_inv[m, k] * delta[k]
            dr += v_inv[m, k] * delta[N_LOCAL + k]
        zs[m] += ds
        zr[m] += dr


_WORK_SIZE = (6 + 2 * _N_STAGES) * N_NL + 9 * N_LOCAL + 6 + len(SIGNALS)
"""Floats of scratch one patient's integration needs (:func:`_integrate_one`)."""
_IWORK_SIZE = 3 * N_LOCAL
"""Integers of scratch one patient's integration needs (:func:`_integrate_one`)."""


@nb.njit(**_JIT, _nrt=False)
def _integrate_one(
    pkc,
    cc,
    sc,
    lam,
    v,
    v_inv,
    bp_t,
    bp_u,
    jptr,
    j_kind,
    j_value,
    j_delta,
    le_t,
    le_points,
    y0,
    t_start,
    t_end,
    t_out,
    codes,
    rtol,
    atol,
    max_step,
    out,
    y_end,
    work,
    iwork,
):
    """Integrate one patient from ``t_start`` to ``t_end`` (hours) with the semantics of the
    reference engine's ``integrate_span``: jumps due at ``t_start`` are applied, those due at
    ``t_end`` are not; outputs are right-continuous except at ``t_end``. ``le_t``/``le_points``
    are the patient's own life events (hours, MADRS points); ``work`` is scratch of
    :data:`_WORK_SIZE` floats, ``iwork`` of :data:`_IWORK_SIZE` integers. Returns the number of
    steps tried, or -1 if the step size collapsed.

    Compiled without Numba's reference counting (it allocates nothing): the atomic counts on the
    arrays passed around the stage loop took about a sixth of the time."""
    n = N_NL
    y = work[:n]
    ys = work[n : 2 * n]
    dl = work[2 * n : 3 * n]
    ns = _N_STAGES
    kf = work[3 * n : (3 + ns) * n].reshape((ns, n))
    kz = work[(3 + ns) * n : (3 + 2 * ns) * n].reshape((ns, n))
    a = (3 + 2 * ns) * n
    zs = work[a : a + N_LOCAL]
    zr = work[a + N_LOCAL : a + 2 * N_LOCAL]
    zs1 = work[a + 2 * N_LOCAL : a + 3 * N_LOCAL]
    zr1 = work[a + 3 * N_LOCAL : a + 4 * N_LOCAL]
    w = work[a + 4 * N_LOCAL : a + 5 * N_LOCAL]
    size = work[a + 5 * N_LOCAL : a + 6 * N_LOCAL]
    zs_o = work[a + 6 * N_LOCAL : a + 7 * N_LOCAL]
    zr_o = work[a + 7 * N_LOCAL : a + 8 * N_LOCAL]
    wl = work[a + 8 * N_LOCAL : a + 9 * N_LOCAL]
    a += 9 * N_LOCAL
    den = work[a : a + n]
    y_o = work[a + n : a + 2 * n]
    f_end = work[a + 2 * n : a + 3 * n]
    a += 3 * n
    conc = work[a : a + 4]
    plasma = work[a + 4 : a + 6]
    sig = work[a + 6 : a + 6 + len(SIGNALS)]
    adv = iwork[:N_LOCAL]
    obs = iwork[N_LOCAL : 2 * N_LOCAL]
    seen = iwork[2 * N_LOCAL :]
    n_adv = n_obs = 0
    to_um = pkc.fu * 1000.0 / pkc.mw_k
    pk_out = _needs_pk(codes)
    _mode_weights(v, lam, size, seen)
    _infusion_weights(v_inv, lam, w, wl)
    for i in range(n):
        y[i] = y0[2 * N_LOCAL + i]
    for m in range(N_LOCAL):
        zs[m] = 0.0
        zr[m] = 0.0
        for k in range(N_LOCAL):
            zs[m] += v_inv[m, k] * y0[k]
            zr[m] += v_inv[m, k] * y0[N_LOCAL + k]
    n_bp = bp_t.size
    b = 0
    for k in range(n_bp):
        if bp_t[k] <= t_start:
            b = k
    i_out = 0
    while i_out < t_out.size and t_out[i_out] < t_start:
        i_out += 1
    i_le = 0
    while i_le < le_t.size and le_t[i_le] < t_start:
        i_le += 1
    n_steps = 0
    h = 0.01
    log_err_old = _LOG_ERR_OLD_FLOOR
    t = t_start
    drug = True
    while True:
        if bp_t[b] == t and t < t_end:
            for j in range(jptr[b], jptr[b + 1]):
                if j_kind[j] == JUMP_DOSE:
                    _apply_dose(zs, zr, v_inv, j_delta[j])
                    drug = True
                    h = 0.01
                elif j_kind[j] == JUMP_SESSION:
                    y[9] += _SESSION(y[9], y[4], j_value[j], sc)
                else:
                    y[10] += j_value[j]
        u = bp_u[b]
        drug = drug or u[0] != 0.0 or u[1] != 0.0
        if drug:
            n_adv, n_obs = _active_modes(zs, zr, size, seen, w, u, adv, obs, zs1, zr1)
        else:
            conc[:] = 0.0
        last = b + 1 >= n_bp or bp_t[b + 1] >= t_end
        t_seg = t_end if last else bp_t[b + 1]
        while True:
            while i_le < le_t.size and le_t[i_le] == t and t < t_end:
                y[10] += le_points[i_le]
                i_le += 1
            while i_out < t_out.size and t_out[i_out] == t and (t < t_seg or last):
                _record(y, zs, zr, v, u, pkc, cc, sc, codes, out[i_out], conc, plasma, sig, pk_out)
                i_out += 1
            if t >= t_seg:
                break
            target = t_seg
            if i_le < le_t.size and le_t[i_le] < target:
                target = le_t[i_le]
            while t < target:
                h_try = min(h, max_step)
                hit = t + h_try >= target
                step = target - t if hit else h_try
                # ARK4(3)7L[2]SA1: each state's own first-order loss (``_LOSS``, frozen at the
                # step's start) is the implicit part, solved per state by one division; the
                # rest of the right-hand side is the explicit part. kf holds the full
                # right-hand side at each stage, kz the stage values.
                if drug:
                    _mode_conc(zs, zr, v, obs, n_obs, to_um, conc)
                _LOSS(y, conc, u, cc, sc, dl)
                for i in range(N_NL):
                    dl[i] = step * max(dl[i], 0.0)
                    den[i] = 1.0 / (1.0 + _ARK_GAMMA * dl[i])
                    kz[0, i] = y[i]
                _RHS(y, conc, u, cc, sc, kf[0])
                for s in range(1, _N_STAGES):
                    for i in range(N_NL):
                        acc = 0.0
                        stiff = 0.0
                        for j in range(s):
                            acc = fma(_ARK_AE[s, j], kf[j, i], acc)
                            stiff = fma(_ARK_AD[s, j], kz[j, i], stiff)
                        kz[s, i] = fma(-dl[i], stiff, fma(step, acc, y[i])) * den[i]
                    # The inner stages need only the observed modes; the last (c = 1) advances
                    # every mode to the step's end.
                    if drug and s < _N_STAGES - 1:
                        _pk_advance(zs, zr, lam, w, wl, u, _ARK_C[s] * step, obs, n_obs, zs1, zr1)
                        _mode_conc(zs1, zr1, v, obs, n_obs, to_um, conc)
                    elif drug:
                        _pk_advance(zs, zr, lam, w, wl, u, step, adv, n_adv, zs1, zr1)
                        _mode_conc(zs1, zr1, v, obs, n_obs, to_um, conc)
                    _RHS(kz[s], conc, u, cc, sc, kf[s])
                err = 0.0
                total = 0.0
                for i in range(N_NL):
                    acc = 0.0
                    e_i = 0.0
                    for j in range(_N_STAGES):
                        acc = fma(_ARK_B[j], kf[j, i], acc)
                        e_i = fma(_ARK_E[j], kf[j, i], e_i)
                    ys[i] = fma(step, acc, y[i])
                    scale = atol[i] + rtol[i] * max(abs(y[i]), abs(ys[i]))
                    # filtered for the implicit part (Hairer & Wanner's (I - h gamma J)^-1)
                    e_abs = abs(step * e_i * den[i])
                    total += e_abs + abs(ys[i])
                    err = max(err, e_abs / scale)
                if not total < np.inf:
                    err = np.nan
                n_steps += 1
                if err <= 1.0:
                    t_new = target if hit else t + step
                    if i_out < t_out.size and t_out[i_out] < t_new:
                        # Outputs inside the step, interpolated (``_dense_output``; ``conc`` is
                        # the step end's).
                        _RHS(ys, conc, u, cc, sc, f_end)
                        while i_out < t_out.size and t_out[i_out] < t_new:
                            _dense_output(
                                t_out[i_out] - t, step, y, ys, kf[0], f_end, dl, zs, zr, lam,
                                w, wl, u, drug and pk_out, adv, n_adv, y_o, zs_o, zr_o,
                            )  # fmt: skip
                            _record(
                                y_o, zs_o, zr_o, v, u, pkc, cc, sc, codes, out[i_out], conc,
                                plasma, sig, pk_out,
                            )  # fmt: skip
                            i_out += 1
                    t = t_new
                    for i in range(N_NL):  # a negligible state is zero, not a slow subnormal
                        y[i] = 0.0 if abs(ys[i]) < _NEGLIGIBLE_STATE else ys[i]
                    if drug:
                        for m in range(N_LOCAL):
                            zs[m] = zs1[m]
                            zr[m] = zr1[m]
                        drug = _drug_present(zs, zr, size, u)
                        if drug:
                            n_adv, n_obs = _active_modes(
                                zs, zr, size, seen, w, u, adv, obs, zs1, zr1
                            )
                        if not drug:
                            conc[:] = 0.0
                    # PI step control (Gustafsson), for the embedded method's order 3.
                    log_e = log(max(err, 1e-10))
                    grow = _PI_SAFETY * exp(_PI_BETA * log_err_old - _PI_ALPHA * log_e)
                    h = step * min(5.0, max(0.1, grow))
                    log_err_old = max(log_e, _LOG_ERR_OLD_FLOOR)
                    if hit:
                        h = max(h, h_try)
                else:
                    h = step * max(0.2, 0.9 * err ** (-0.25))
                    if h < 1e-10:
                        return -1
        if last:
            break
        b += 1
    for k in range(N_LOCAL):
        xs = 0.0
        xr = 0.0
        for m in range(N_LOCAL):
            xs += v[k, m] * zs[m]
            xr += v[k, m] * zr[m]
        y_end[k] = xs
        y_end[N_LOCAL + k] = xr
    for i in range(N_NL):
        y_end[2 * N_LOCAL + i] = y[i]
    return n_steps


@nb.njit(**_JIT, parallel=True, nogil=True)
def integrate_batch(
    pkc_rows,
    cc_rows,
    sc_rows,
    lam,
    v,
    v_inv,
    bp_t,
    bp_u,
    jptr,
    j_kind,
    j_value,
    j_delta,
    le_ptr,
    le_t,
    le_points,
    y0,
    t_start,
    t_end,
    t_out,
    codes,
    rtol,
    atol,
    max_step,
    out,
    y_end,
    steps,
):
    """:func:`_integrate_one` for every patient (axis 0 of the per-patient arrays), in parallel.
    Breakpoint times ``bp_t`` and the jump layout (``jptr``, ``j_kind``) are shared; inputs,
    jump values and dose increments are per patient; life events are per patient (CSR)."""
    for i in nb.prange(y0.shape[0]):
        steps[i] = _integrate_one(
            _pkc(pkc_rows[i]),
            _cc(cc_rows[i]),
            _sc(sc_rows[i]),
            lam[i],
            v[i],
            v_inv[i],
            bp_t,
            bp_u[i],
            jptr,
            j_kind,
            j_value[i],
            j_delta[i],
            le_t[le_ptr[i] : le_ptr[i + 1]],
            le_points[le_ptr[i] : le_ptr[i + 1]],
            y0[i],
            t_start,
            t_end,
            t_out,
            codes,
            rtol,
            atol,
            max_step,
            out[i],
            y_end[i],
            np.empty(_WORK_SIZE),
            np.empty(_IWORK_SIZE, dtype=np.int64),
        )


# ------------------------------------------------------------------------------- one patient


def constant_rows(model: CompiledModel) -> tuple[NDArray, NDArray, NDArray]:
    """The patient's PK, cascade and synapse constants as float rows (kernel layout)."""
    return (
        np.asarray(model.pkc, dtype=float),
        np.asarray(model.cc, dtype=float),
        np.asarray(model.sc, dtype=float),
    )


def schedule_arrays(schedule: Schedule) -> dict[str, NDArray]:
    """A compiled :class:`~ketadur.model.system.Schedule` in the kernel's array layout."""
    jumps = [j for group in schedule.jumps for j in group]
    kinds = {"life_event": JUMP_LIFE_EVENT, "session": JUMP_SESSION, "dose": JUMP_DOSE}
    delta = np.zeros((len(jumps), 2 * N_LOCAL))
    for i, j in enumerate(jumps):
        if j.delta is not None:
            delta[i] = j.delta
    return {
        "bp_t": np.asarray(schedule.breakpoints_h, dtype=float),
        "bp_u": np.stack(schedule.inputs).astype(float),
        "jptr": np.cumsum([0, *(len(g) for g in schedule.jumps)]).astype(np.int64),
        "j_kind": np.asarray([kinds[j.kind] for j in jumps], dtype=np.int64),
        "j_value": np.asarray([j.weight if j.kind == "session" else j.points for j in jumps]),
        "j_delta": delta,
    }


def inputs_at(arrays: dict[str, NDArray], t_out_h: NDArray, t_end_h: float) -> NDArray[np.float64]:
    """Inputs (n_in, n) in force at ``t_out_h`` for a schedule in kernel layout
    (:func:`schedule_arrays`); at ``t_end_h``, those of the last segment."""
    bps = arrays["bp_t"]
    idx = np.searchsorted(bps, t_out_h, side="right") - 1
    at_end = t_out_h >= t_end_h
    idx[at_end] = np.searchsorted(bps, t_out_h[at_end], side="left") - 1
    return arrays["bp_u"][np.maximum(idx, 0)].T


@nb.njit(**_JIT)
def _integrate_single(
    pkc_row, cc_row, sc_row, lam, v, v_inv, bp_t, bp_u, jptr, j_kind, j_value, j_delta,
    y0, t_start, t_end, t_out, codes, rtol, atol, max_step, out, y_end,
):  # fmt: skip
    """:func:`_integrate_one` for one patient without a parallel region: the adaptive runner
    calls this thousands of times per trial arm, and a parallel launch per call costs more than
    the span when other processes hold the cores."""
    empty = np.empty(0)
    return _integrate_one(
        _pkc(pkc_row), _cc(cc_row), _sc(sc_row), lam, v, v_inv, bp_t, bp_u, jptr, j_kind,
        j_value, j_delta, empty, empty, y0, t_start, t_end, t_out, codes, rtol, atol, max_step,
        out, y_end, np.empty(_WORK_SIZE), np.empty(_IWORK_SIZE, dtype=np.int64),
    )  # fmt: skip


_SPAN_CODES = np.concatenate(
    [np.arange(_STATE_CODE, _STATE_CODE + len(STATE_NAMES)), output_codes(OUTPUT_NAMES)]
).astype(np.int64)
"""What a single-patient span records: the full state, then every output."""


def integrate_span_fast(
    model: CompiledModel,
    schedule: Schedule,
    y_start: NDArray[np.float64],
    t_start_h: float,
    t_end_h: float,
    t_out_h: NDArray[np.float64],
    settings: FastSettings = FastSettings(),
    arrays: dict[str, NDArray] | None = None,
) -> Span:
    """Drop-in for :func:`ketadur.engine.reference.integrate_span` using the fast engine; the
    span also carries every output at ``t_out_h``, recorded as it integrates. ``arrays`` is the
    schedule in kernel layout (:func:`schedule_arrays`), for a caller that integrates many spans
    of one schedule."""
    if arrays is None:
        arrays = schedule_arrays(schedule)
    modes = model.pk_modes
    t_out = np.asarray(t_out_h, dtype=float)
    out = np.full((t_out.size, _SPAN_CODES.size), np.nan)
    y_end = np.empty(len(STATE_NAMES))
    pkc, cc, sc = constant_rows(model)
    steps = _integrate_single(
        pkc, cc, sc, modes.lam[0], modes.v[0], modes.v_inv[0],
        arrays["bp_t"], arrays["bp_u"], arrays["jptr"], arrays["j_kind"],
        arrays["j_value"], arrays["j_delta"],
        np.asarray(y_start, dtype=float), float(t_start_h), float(t_end_h), t_out, _SPAN_CODES,
        *settings.state_tolerances(), settings.max_step_h, out, y_end,
    )  # fmt: skip
    u_out = inputs_at(arrays, t_out, t_end_h)
    n = len(STATE_NAMES)
    if steps < 0:
        msg = f"fast engine: step size collapsed between t={t_start_h / 24.0:.4f} d and the end"
        return Span(out[:, :n].T, u_out, y_end, "failed", msg, out[:, n:].T)
    return Span(out[:, :n].T, u_out, y_end, "success", "", out[:, n:].T)
