"""The whole model for one patient: state layout, right-hand side, event jumps and outputs.

:func:`compile_model` turns a patient into a :class:`CompiledModel`; :func:`compile_schedule` turns
a :class:`~ketadur.regimen.Regimen` into piecewise-constant inputs and state jumps at exact times.
Engines integrate ``CompiledModel.rhs`` between breakpoints and apply ``CompiledModel.apply_jump``
at them; they need to know nothing about drugs.

Time is in hours inside the model; regimens and results speak in days.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ketadur.model import cascade as cas
from ketadur.model import pk
from ketadur.model import synapse_mood as syn
from ketadur.model.kernels import NONLINEAR_STATES, SIGNALS
from ketadur.model.kernels import PYTHON_KERNELS as KERNELS
from ketadur.model.patient import Patient
from ketadur.regimen import Regimen

CASCADE_STATES = ("glutamate", "bdnf", "erk", "dusp6")
SYNAPSE_STATES = (
    "potentiation",
    "structural",
    "stabilised",
    "homeostasis",
    "tolerance",
    "consolidated",
    "situational",
)
STATE_NAMES: tuple[str, ...] = pk.PK_STATES + CASCADE_STATES + SYNAPSE_STATES
assert CASCADE_STATES + SYNAPSE_STATES == NONLINEAR_STATES
N_STATES = len(STATE_NAMES)
_I = {name: i for i, name in enumerate(STATE_NAMES)}

INPUT_NAMES = (
    "iv_rate_s_mg_per_h",
    "iv_rate_r_mg_per_h",
    "dusp6_inhibitor",
    "exercise_change",
    "sleep_deficit_change",
    "oral_antidepressant",
)
"""Piecewise-constant inputs. Lifestyle inputs are changes from the patient's habits;
``oral_antidepressant`` is 1 while a background oral antidepressant is taken."""

OUTPUTS: dict[str, str] = {
    "plasma_ketamine_ng_per_ml": "ng/mL",
    "plasma_norketamine_ng_per_ml": "ng/mL",
    "nmda_occupancy": "fraction",
    "glutamate": "relative excess",
    "ampa": "relative",
    "bdnf": "relative (1 = baseline)",
    "trkb": "relative excess",
    "erk": "relative excess",
    "dusp6": "relative (1 = baseline)",
    "mtorc1": "relative excess",
    "potentiation": "fraction of maximum",
    "structural": "fraction of maximum",
    "stabilised": "fraction of maximum",
    "homeostasis": "arbitrary",
    "tolerance": "arbitrary",
    "consolidated": "fraction of maximum",
    "relief": "fraction of core MADRS",
    "madrs": "points (0-60)",
    "cadss": "points",
    "sbp_mmhg": "mmHg",
    "plasma_bdnf_ng_per_ml": "ng/mL",
}
"""Every output the model reports, with its unit."""

HEALTHY_SLEEP_H = 7.0
"""Nightly sleep below which a sleep deficit counts (assumed; adult recommendation of >= 7 h,
Watson NF et al. Sleep 2015;38:843-844)."""


@dataclass(frozen=True, slots=True)
class Jump:
    """A discontinuity at ``time_h``: a dose (``delta`` added to the PK states), a therapy
    session (``weight`` of consolidation), or a life event (``points`` of situational load)."""

    time_h: float
    kind: Literal["dose", "session", "life_event"]
    delta: NDArray[np.float64] | None = None
    weight: float = 0.0
    points: float = 0.0


@dataclass(frozen=True, slots=True)
class Schedule:
    """Breakpoints (hours, sorted, starting at 0), the input vector on each segment after a
    breakpoint, and the jumps applied at each breakpoint."""

    breakpoints_h: tuple[float, ...]
    inputs: tuple[NDArray[np.float64], ...]
    jumps: tuple[tuple[Jump, ...], ...]


@dataclass(frozen=True)
class CompiledModel:
    """The model for one patient: constants, initial state and the functions engines call."""

    patient: Patient
    pkc: pk.PKConstants
    cc: cas.CascadeConstants
    sc: syn.SynapseConstants
    a_pk: NDArray[np.float64] = field(repr=False)
    b_pk: NDArray[np.float64] = field(repr=False)

    def initial_state(self) -> NDArray[np.float64]:
        """The untreated patient at steady state (no drug, baseline signalling)."""
        y = np.zeros(N_STATES)
        y[_I["bdnf"]] = 1.0
        y[_I["dusp6"]] = 1.0
        y[_I["situational"]] = self.patient.situational_madrs
        return y

    def _conc_um(self, y_pk: NDArray[np.float64]) -> NDArray[np.float64]:
        conc = pk.unbound_effect_site_um(self.pkc, y_pk)
        return np.array(
            [conc[n] for n in ("s_ketamine", "r_ketamine", "s_norketamine", "r_norketamine")]
        )

    def signals(self, y: NDArray[np.float64], u: NDArray[np.float64]) -> dict[str, float]:
        """Occupancy, AMPA, TrkB, mTORC1 and the structural decay multiplier at state ``y``."""
        out = np.empty(len(SIGNALS))
        plasma = float(pk.plasma_ketamine_ng_per_ml(self.pkc, y[: pk.N_PK]))
        KERNELS.observe(y[pk.N_PK :], self._conc_um(y[: pk.N_PK]), plasma, u, self.cc, self.sc, out)
        sig = dict(zip(SIGNALS, (float(v) for v in out), strict=True))
        return {
            "occupancy": sig["nmda_occupancy"],
            **{k: sig[k] for k in ("ampa", "trkb", "mtorc1", "decay_rate")},
        }

    def rhs(self, t_h: float, y: NDArray[np.float64], u: NDArray[np.float64]) -> NDArray:
        """Time derivative of the state (per hour) under the constant inputs ``u``."""
        dy = np.empty(N_STATES)
        dy[: pk.N_PK] = self.a_pk @ y[: pk.N_PK] + self.b_pk @ u[:2]
        conc = self._conc_um(y[: pk.N_PK])
        KERNELS.rhs(y[pk.N_PK :], conc, u, self.cc, self.sc, dy[pk.N_PK :])
        return dy

    def apply_jump(self, y: NDArray[np.float64], jump: Jump) -> NDArray[np.float64]:
        """The state just after ``jump`` (a new array)."""
        y = y.copy()
        if jump.kind == "dose":
            assert jump.delta is not None
            y[: pk.N_PK] += jump.delta
        elif jump.kind == "session":
            y[_I["consolidated"]] += KERNELS.session_jump(
                float(y[_I["consolidated"]]), float(y[_I["potentiation"]]), jump.weight, self.sc
            )
        else:
            y[_I["situational"]] += jump.points
        return y

    def outputs(self, y_matrix: NDArray[np.float64], u_matrix: NDArray[np.float64]) -> dict:
        """Every output in :data:`OUTPUTS` for states ``(n_states, n)`` and inputs ``(n_in, n)``."""
        n = y_matrix.shape[1]
        out = {name: np.empty(n) for name in OUTPUTS}
        out["plasma_ketamine_ng_per_ml"] = pk.plasma_ketamine_ng_per_ml(self.pkc, y_matrix)
        out["plasma_norketamine_ng_per_ml"] = pk.plasma_norketamine_ng_per_ml(self.pkc, y_matrix)
        for name in NONLINEAR_STATES:
            if name in OUTPUTS:  # states reported as they are
                out[name] = y_matrix[_I[name]].copy()
        signals = np.empty(len(SIGNALS))
        for j in range(n):
            y, u = y_matrix[:, j], u_matrix[:, j]
            plasma = float(out["plasma_ketamine_ng_per_ml"][j])
            KERNELS.observe(
                y[pk.N_PK :], self._conc_um(y[: pk.N_PK]), plasma, u, self.cc, self.sc, signals
            )
            for i, name in enumerate(SIGNALS):
                if name in OUTPUTS:
                    out[name][j] = signals[i]
        return out


def compile_model(patient: Patient) -> CompiledModel:
    """Constants and matrices for ``patient`` (a new object; the patient is not modified)."""
    p = patient.params
    pkc = pk.PKConstants.from_params(p, patient.weight_kg)
    a_pk, b_pk = pk.pk_matrices(pkc)
    cc = cas.CascadeConstants.from_params(
        p,
        met_alleles=patient.met_alleles,
        trkb_deleted=patient.trkb_deleted,
    )
    sc = syn.SynapseConstants.from_params(
        p,
        age_years=patient.age_years,
        chronic_stress=patient.chronic_stress,
        tolerance_propensity=patient.tolerance_propensity,
        baseline_madrs=patient.baseline_madrs,
        situational_madrs=patient.situational_madrs,
        situational_half_life_days=patient.situational_half_life_days,
        baseline_sbp_mmhg=patient.baseline_sbp_mmhg,
    )
    return CompiledModel(patient, pkc, cc, sc, a_pk, b_pk)


def _sleep_deficit(h: float) -> float:
    return max(0.0, HEALTHY_SLEEP_H - h)


def compile_schedule(model: CompiledModel, regimen: Regimen) -> Schedule:
    """Breakpoints, inputs and jumps for ``regimen`` given to the model's patient."""
    patient = model.patient
    intervals: list[tuple[float, float, NDArray[np.float64]]] = []
    jumps: list[Jump] = []
    for dose in regimen.doses:
        if dose.drug == "placebo":
            continue
        amount = dose.amount_mg(patient.weight_kg)
        t0 = dose.day * 24.0
        if dose.route == "iv" and dose.infusion_minutes > 0:
            u = np.zeros(len(INPUT_NAMES))
            u[:2] = pk.infusion_rates_mg_per_h(dose, amount)
            intervals.append((t0, t0 + dose.infusion_minutes / 60.0, u))
        else:
            jumps.append(Jump(t0, "dose", delta=pk.bolus_jump(model.pkc, dose, amount)))
    for window in regimen.adjuncts:
        u = np.zeros(len(INPUT_NAMES))
        u[2] = 1.0
        intervals.append((window.start_day * 24.0, window.end_day * 24.0, u))
    # Lifestyle changes are steps: each holds until the next one starts.
    changes = sorted(regimen.lifestyle, key=lambda c: c.start_day)
    ends = [c.start_day * 24.0 for c in changes[1:]] + [np.inf] * bool(changes)
    for change, end in zip(changes, ends, strict=True):
        u = np.zeros(len(INPUT_NAMES))
        u[3] = change.exercise_sessions_per_week - patient.habitual_exercise_sessions_per_week
        u[4] = _sleep_deficit(change.sleep_h_per_night) - _sleep_deficit(
            patient.habitual_sleep_h_per_night
        )
        intervals.append((change.start_day * 24.0, end, u))
    # A background oral antidepressant: throughout for a patient already on one, else in windows.
    medication_spans = [(0.0, np.inf)] if patient.background_antidepressant else []
    medication_spans += [
        (m.start_day * 24.0, np.inf if m.end_day is None else m.end_day * 24.0)
        for m in regimen.medications
    ]
    for start, end in medication_spans:
        u = np.zeros(len(INPUT_NAMES))
        u[5] = 1.0
        intervals.append((start, end, u))
    weights = {"mindfulness": model.sc.mindfulness_weight}
    for session in regimen.sessions:
        jumps.append(Jump(session.day * 24.0, "session", weight=weights.get(session.kind, 1.0)))
    for event in patient.life_events:
        jumps.append(Jump(event.day * 24.0, "life_event", points=event.madrs_points))

    times = {0.0}
    times.update(t for iv in intervals for t in iv[:2] if np.isfinite(t))
    times.update(j.time_h for j in jumps)
    breakpoints = tuple(sorted(times))
    inputs = []
    for t in breakpoints:
        u = np.zeros(len(INPUT_NAMES))
        for start, end, contribution in intervals:
            if start <= t < end:
                u = u + contribution
        u[5] = min(u[5], 1.0)  # overlapping medication windows: on is on
        inputs.append(u)
    order = {"life_event": 0, "session": 1, "dose": 2}
    grouped = tuple(
        tuple(sorted((j for j in jumps if j.time_h == t), key=lambda j: order[j.kind]))
        for t in breakpoints
    )
    return Schedule(breakpoints, tuple(inputs), grouped)


def model_hash(patient: Patient) -> str:
    """A short hash of the model's parameters and the patient's covariates (for provenance)."""
    payload = patient.model_dump(exclude={"params"})
    payload["params"] = dict(patient.params)
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


GRAPH: tuple[tuple[str, object], ...] = (
    ("occupancy", cas.nmda_occupancy),
    ("glutamate", cas.d_glutamate),
    ("ampa", cas.ampa_throughput),
    ("bdnf", cas.d_bdnf),
    ("trkb", cas.trkb_activation),
    ("erk", cas.d_erk),
    ("dusp6", cas.d_dusp6),
    ("mtorc1", cas.mtorc1_activity),
    ("potentiation", syn.d_potentiation),
    ("decay_rate", syn.structural_decay_rate),
    ("structural", syn.d_structural),
    ("stabilised", syn.d_stabilised),
    ("homeostasis", syn.d_homeostasis),
    ("tolerance", syn.d_tolerance),
    ("consolidated", syn.d_consolidated),
    ("consolidated", syn.session_consolidation),
    ("situational", syn.d_situational),
    ("relief_fraction", syn.relief),
    ("madrs", syn.madrs),
    ("cadss", syn.cadss),
)
"""Each model quantity and the function that defines it (signal or state derivative). The function's
argument names are its inputs: :mod:`ketadur.reports.diagram` draws the cascade from this."""
