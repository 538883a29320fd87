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
from functools import cached_property
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ketadur.model import cascade as cas
from ketadur.model import pk
from ketadur.model import synapse_mood as syn
from ketadur.model.kernels import NONLINEAR_STATES, SIGNALS
from ketadur.model.kernels import PYTHON_KERNELS as KERNELS
from ketadur.model.patient import Patient
from ketadur.model.pk_modes import PKModes, pk_modes
from ketadur.regimen import PLACEBOS, Regimen

CASCADE_STATES = NONLINEAR_STATES[:4]
SYNAPSE_STATES = NONLINEAR_STATES[4:]
STATE_NAMES: tuple[str, ...] = pk.PK_STATES + CASCADE_STATES + SYNAPSE_STATES
N_STATES = len(STATE_NAMES)
_I = {name: i for i, name in enumerate(STATE_NAMES)}

INPUT_NAMES = (
    "iv_rate_s_mg_per_h",
    "iv_rate_r_mg_per_h",
    "dusp6_inhibitor",
    "exercise_change",
    "sleep_deficit_change",
    "oral_antidepressant",
    "expectancy_cue",
)
"""Piecewise-constant inputs. Lifestyle inputs are changes from the patient's habits;
``oral_antidepressant`` is 1 while a background oral antidepressant is taken; ``expectancy_cue``
is the weight of the administrations whose treatment hour is under way (see
:func:`ketadur.model.synapse_mood.d_expectancy`)."""

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
    "expectancy": "fraction of maximum",
    "acute": "fraction of maximum",
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


def initial_states(situational_madrs: NDArray[np.float64]) -> NDArray[np.float64]:
    """Untreated steady states (n, N_STATES) of patients with these situational loads (MADRS)."""
    y = np.zeros((len(situational_madrs), N_STATES))
    y[:, _I["bdnf"]] = 1.0
    y[:, _I["dusp6"]] = 1.0
    y[:, _I["situational"]] = situational_madrs
    return y


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
        return initial_states(np.array([self.patient.situational_madrs]))[0]

    @cached_property
    def pk_modes(self) -> PKModes:
        """Modal form of the patient's PK block (one enantiomer; S and R share it)."""
        n = len(pk.PK_LOCAL)
        return pk_modes(self.a_pk[None, :n, :n])

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


def _sleep_deficit(h: NDArray[np.float64] | float) -> NDArray[np.float64]:
    return np.maximum(0.0, HEALTHY_SLEEP_H - np.asarray(h, dtype=float))


@dataclass(frozen=True)
class BatchSchedule:
    """A regimen compiled for ``n`` patients at once: shared breakpoints (hours) and jump layout
    (jumps of breakpoint ``b`` are ``jptr[b]:jptr[b+1]``, of kind ``j_kind``), per-patient inputs
    ``bp_u`` (n, B, n_in), jump values ``j_value`` (n, J: session weight) and PK increments
    ``j_delta`` (n, J, N_PK). Patients' own life events are not included."""

    bp_t: NDArray[np.float64]
    bp_u: NDArray[np.float64]
    jptr: NDArray[np.int64]
    j_kind: tuple[str, ...]
    j_value: NDArray[np.float64]
    j_delta: NDArray[np.float64]


def compile_schedule_batch(
    regimen: Regimen,
    *,
    weight_kg: NDArray[np.float64],
    pkc: pk.PKConstants,
    mindfulness_weight: NDArray[np.float64],
    inert_placebo_weight: NDArray[np.float64],
    habitual_exercise_sessions_per_week: NDArray[np.float64],
    habitual_sleep_h_per_night: NDArray[np.float64],
    background_antidepressant: NDArray[np.bool_],
) -> BatchSchedule:
    """Breakpoints, inputs and jumps of ``regimen`` for ``n`` patients (arrays of length n;
    ``pkc`` holds arrays). Dose amounts follow each patient's weight, lifestyle inputs are changes
    from each patient's habits, and a patient on a background antidepressant takes it throughout."""
    weight = np.atleast_1d(np.asarray(weight_kg, dtype=float))
    n = weight.size
    n_in = len(INPUT_NAMES)
    # (start, end, per-patient input contribution (n, n_in))
    intervals: list[tuple[float, float, NDArray[np.float64]]] = []
    jumps: list[tuple[float, str, NDArray[np.float64], NDArray[np.float64]]] = []
    for dose in regimen.doses:
        # Every administration cues expectancy; an inert placebo less (its blind is weak).
        cue = np.zeros((n, n_in))
        cue[:, 6] = inert_placebo_weight if dose.drug == "placebo" else 1.0
        intervals.append((dose.day * 24.0, dose.day * 24.0 + syn.EXPECTANCY_CUE_H, cue))
        if dose.drug in PLACEBOS:
            continue
        amount = dose.amount_mg(weight) * np.ones(n)
        t0 = dose.day * 24.0
        if dose.route == "iv" and dose.infusion_minutes > 0:
            u = np.zeros((n, n_in))
            u[:, :2] = pk.infusion_rates_mg_per_h(dose, amount).T
            intervals.append((t0, t0 + dose.infusion_minutes / 60.0, u))
        else:
            delta = pk.bolus_jump(pkc, dose, amount).T
            jumps.append((t0, "dose", np.zeros(n), delta))
    for window in regimen.adjuncts:
        u = np.zeros((n, n_in))
        u[:, 2] = 1.0
        intervals.append((window.start_day * 24.0, window.end_day * 24.0, u))
    # Lifestyle changes are steps: each holds until the next one starts.
    changes = sorted(regimen.lifestyle, key=lambda c: c.start_day)
    ends = [c.start_day * 24.0 for c in changes[1:]] + [np.inf] * bool(changes)
    for change, end in zip(changes, ends, strict=True):
        u = np.zeros((n, n_in))
        u[:, 3] = change.exercise_sessions_per_week - habitual_exercise_sessions_per_week
        u[:, 4] = _sleep_deficit(change.sleep_h_per_night) - _sleep_deficit(
            habitual_sleep_h_per_night
        )
        intervals.append((change.start_day * 24.0, end, u))
    # A background oral antidepressant: throughout for a patient already on one, else in windows.
    on_throughout = np.zeros((n, n_in))
    on_throughout[:, 5] = np.asarray(background_antidepressant, dtype=float)
    intervals.append((0.0, np.inf, on_throughout))
    for m in regimen.medications:
        u = np.zeros((n, n_in))
        u[:, 5] = 1.0
        intervals.append((m.start_day * 24.0, np.inf if m.end_day is None else m.end_day * 24.0, u))
    for session in regimen.sessions:
        weight_i = mindfulness_weight if session.kind == "mindfulness" else 1.0
        value = np.asarray(weight_i, dtype=float) * np.ones(n)
        jumps.append((session.day * 24.0, "session", value, np.zeros((n, pk.N_PK))))

    times = {0.0}
    times.update(t for iv in intervals for t in iv[:2] if np.isfinite(t))
    times.update(j[0] for j in jumps)
    bp_t = np.array(sorted(times))
    bp_u = np.zeros((n, bp_t.size, n_in))
    for start, end, contribution in intervals:
        # The breakpoints in [start, end) are consecutive: a slice adds in place, without a
        # copy, and only the inputs the interval changes (a large population's inputs take
        # hundreds of MB).
        first, stop = np.searchsorted(bp_t, start, "left"), np.searchsorted(bp_t, end, "left")
        for c in np.flatnonzero(np.any(contribution != 0.0, axis=0)):
            bp_u[:, first:stop, c] += contribution[:, None, c]
    bp_u[:, :, 5] = np.minimum(bp_u[:, :, 5], 1.0)  # overlapping medication windows: on is on
    order = {"session": 0, "dose": 1}
    jumps.sort(key=lambda j: (j[0], order[j[1]]))
    counts = np.array([sum(1 for j in jumps if j[0] == t) for t in bp_t], dtype=np.int64)
    return BatchSchedule(
        bp_t=bp_t,
        bp_u=bp_u,
        jptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        j_kind=tuple(j[1] for j in jumps),
        j_value=np.stack([j[2] for j in jumps], axis=1) if jumps else np.zeros((n, 0)),
        j_delta=np.stack([j[3] for j in jumps], axis=1) if jumps else np.zeros((n, 0, pk.N_PK)),
    )


def compile_schedule(model: CompiledModel, regimen: Regimen) -> Schedule:
    """Breakpoints, inputs and jumps for ``regimen`` given to the model's patient (with the
    patient's life events)."""
    patient = model.patient
    batch = compile_schedule_batch(
        regimen,
        weight_kg=np.array([patient.weight_kg]),
        pkc=model.pkc,
        mindfulness_weight=np.array([model.sc.mindfulness_weight]),
        inert_placebo_weight=np.array([model.sc.inert_placebo_weight]),
        habitual_exercise_sessions_per_week=np.array([patient.habitual_exercise_sessions_per_week]),
        habitual_sleep_h_per_night=np.array([patient.habitual_sleep_h_per_night]),
        background_antidepressant=np.array([patient.background_antidepressant]),
    )
    life = {}
    for event in patient.life_events:
        life.setdefault(event.day * 24.0, []).append(
            Jump(event.day * 24.0, "life_event", points=event.madrs_points)
        )
    breakpoints = tuple(sorted(set(batch.bp_t.tolist()) | set(life)))
    inputs, grouped = [], []
    for t in breakpoints:
        b = int(np.searchsorted(batch.bp_t, t, side="right")) - 1
        inputs.append(batch.bp_u[0, b].copy())
        group = list(life.get(t, []))
        if batch.bp_t[b] == t:
            for j in range(batch.jptr[b], batch.jptr[b + 1]):
                kind = batch.j_kind[j]
                if kind == "dose":
                    group.append(Jump(t, "dose", delta=batch.j_delta[0, j].copy()))
                else:
                    group.append(Jump(t, "session", weight=float(batch.j_value[0, j])))
        grouped.append(tuple(group))
    return Schedule(breakpoints, tuple(inputs), tuple(grouped))


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
    ("acute", syn.d_acute),
    ("relief_fraction", syn.relief),
    ("madrs", syn.madrs),
    ("cadss", syn.cadss),
)
"""Each model quantity and the function that defines it (signal or state derivative). The function's
argument names are its inputs: :mod:`ketadur.reports.diagram` draws the cascade from this."""
