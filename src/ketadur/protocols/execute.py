"""Running a protocol on one patient, with its adaptive rules evaluated inside the simulation.

The runner integrates the model from one decision point to the next (assessments, phase starts,
maintenance doses). At each decision point it reads the model's state, exactly as a clinic reads a
rating: MADRS assessments feed the trial's endpoint definitions, which decide who enters the next
phase, when a booster is given, how a maintenance interval changes and when dosing stops. Doses
decided at time T take effect from T on; the simulation is never re-run. Every decision is logged.

Conventions: an assessment at time T reads the state just before anything given at T (a pre-dose
rating). Day 0 always has a baseline MADRS and every phase ends with a MADRS visit (used by the
next phase's entry criterion).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ketadur import __version__
from ketadur.engine.fast import FastSettings, integrate_span_fast, schedule_arrays
from ketadur.engine.reference import (
    SimulationResult,
    SolverSettings,
    default_output_days,
    integrate_span,
)
from ketadur.errors import KetadurInputError
from ketadur.model.patient import TYPICAL_PATIENT, Patient
from ketadur.model.synapse_mood import EXPECTANCY_CUE_H
from ketadur.model.system import (
    INPUT_NAMES,
    OUTPUTS,
    STATE_NAMES,
    CompiledModel,
    compile_model,
    compile_schedule,
    model_hash,
)
from ketadur.protocols.schedule import (
    Event,
    PhasePlan,
    assessment_events,
    dose_events,
    dose_of,
    events_frame,
    phase_events,
    plan_arm,
    regimen_of,
    sort_events,
)
from ketadur.protocols.schema import (
    MEASURE_OUTPUT,
    BoosterRule,
    IntervalRule,
    Protocol,
    StopRule,
)
from ketadur.regimen import PLACEBOS, Dose, Regimen
from ketadur.trials.observe import Rater

_EPS = 1e-9
# Priority of actions due at the same time: ratings first (pre-dose), then phase changes, then
# maintenance doses.
_ASSESS, _PHASE, _MAINTAIN = 0, 1, 2
_DEFAULT_SOLVER = SolverSettings()


@dataclass(frozen=True)
class ProtocolRun:
    """The outcome of one patient on one arm of a protocol.

    ``result`` holds the trajectories; ``events`` what was actually given and measured (planned,
    or added by a rule: see ``source``); ``assessments`` one row per measurement; ``decisions`` the
    log of entry checks and rule firings; ``regimen`` the fixed regimen equivalent to what was given
    (for export, e.g. as a NONMEM dataset).
    """

    protocol: Protocol
    arm: str
    patient: Patient
    seed: int
    result: SimulationResult
    regimen: Regimen
    events: list[Event]
    assessments: pd.DataFrame
    decisions: pd.DataFrame
    phases_entered: tuple[str, ...]

    def events_table(self) -> pd.DataFrame:
        """The events as a table."""
        return events_frame(self.events)

    @property
    def n_doses(self) -> int:
        """Ketamine or esketamine administrations given."""
        return sum(d.drug not in PLACEBOS for d in self.regimen.doses)


@dataclass
class _Maintenance:
    """State of an adjust_interval rule while its phase runs."""

    rule: IntervalRule
    plan: PhasePlan
    interval_days: float
    next_day: float
    until_day: float
    remaining: int | None
    last_dose_day: float | None = None
    shortened: bool = False
    all_stable: bool = True
    stable_count: int = 0
    version: int = 0


@dataclass
class _RunState:
    protocol: Protocol
    plans: list[PhasePlan]
    weight_kg: float
    seed: int
    entered: list[PhasePlan] = field(default_factory=list)
    doses: list[tuple[Dose, str, str]] = field(default_factory=list)  # dose, phase, source
    assessments: list[dict] = field(default_factory=list)
    decisions: list[dict] = field(default_factory=list)
    queue: list = field(default_factory=list)
    counter: itertools.count = field(default_factory=itertools.count)
    current: PhasePlan | None = None
    exited: bool = False
    stopped: bool = False
    booster_since: dict[int, float] = field(default_factory=dict)
    boosters_given: dict[int, int] = field(default_factory=dict)
    maintenance: _Maintenance | None = None
    taken: set = field(default_factory=set)
    rater: Rater | None = None
    regimen_changes: int = 0  # bumped whenever a phase is entered or the doses change

    def push(self, t_days: float, priority: int, action: tuple) -> None:
        heapq.heappush(self.queue, (round(t_days, 9), priority, next(self.counter), action))

    def log(self, t_days: float, decision: str, detail: str) -> None:
        phase = self.current.phase.name if self.current else ""
        self.decisions.append(
            {"t_days": t_days, "phase": phase, "decision": decision, "detail": detail}
        )


def run_protocol(
    protocol: Protocol,
    patient: Patient = TYPICAL_PATIENT,
    *,
    arm: str | None = None,
    seed: int = 0,
    solver: SolverSettings = _DEFAULT_SOLVER,
    output_step_hours: float = 1.0,
    engine: Literal["reference", "fast"] = "reference",
    dense_after_doses: bool = True,
    rater: Rater | None = None,
) -> ProtocolRun:
    """Simulate ``patient`` on ``arm`` (the first if None) of ``protocol`` for its whole duration.

    ``seed`` drives the randomised entry fractions (and nothing else); the same inputs give the same
    result bit for bit. Trajectories are reported every ``output_step_hours`` and every 2 minutes
    for 8 hours after each dose (unless ``dense_after_doses`` is False: trials that need only the
    visits skip that work). ``engine`` picks the integrator: the reference solver (``solver``
    settings) or the fast engine (:mod:`ketadur.engine.fast`, its default tolerances).

    Rules and entry criteria read MADRS ratings: the model's own values, or, given a ``rater``
    (:class:`~ketadur.trials.observe.Rater`), the ratings a study would record, with rater noise
    and missed visits, as a real clinic decides. Assessments keep both (``value`` and
    ``observed``; ``observed`` is NaN for a missed rating).

    Examples
    --------
    >>> from ketadur.protocols.io import load_protocol
    >>> run = run_protocol(load_protocol("protocol1_single_infusion"))
    >>> run.n_doses, list(run.assessments.query("measure == 'madrs'")["t_days"])
    (1, [0.0, 1.0, 3.0, 7.0])
    """
    if not (0.05 <= output_step_hours <= 24.0):
        raise KetadurInputError("output_step_hours", "must lie in [0.05, 24]", output_step_hours)
    chosen = protocol.arm(arm)
    st = _RunState(protocol, plan_arm(protocol, chosen), patient.weight_kg, seed, rater=rater)
    model = compile_model(patient)
    end_day = protocol.duration_days
    for plan in st.plans:
        st.push(plan.start_day, _PHASE, ("phase", plan.index))
    st.push(0.0, _ASSESS, ("assess", ("madrs",), 0, "baseline"))

    y = model.initial_state()
    t_day = 0.0
    pieces_t, pieces_y, pieces_u, pieces_o = [], [], [], []
    status, message = "success", ""
    compiled_at = -1
    while True:
        next_day = min(st.queue[0][0], end_day) if st.queue else end_day
        final = next_day >= end_day - _EPS
        if st.regimen_changes != compiled_at:
            # A schedule compiled earlier stays valid while the regimen is unchanged: the
            # integrator starts at the span's start and skips what is over.
            regimen = _regimen(st)
            schedule = compile_schedule(model, _pending(regimen, t_day))
            arrays = schedule_arrays(schedule) if engine == "fast" else None
            compiled_at = st.regimen_changes
        t_out = default_output_days(
            regimen,
            next_day,
            t_start_days=t_day,
            step_hours=output_step_hours,
            refine_doses=dense_after_doses,
        )
        if not final:  # the span's end is the next span's start (after what is given then)
            t_out = t_out[t_out < next_day]
        if engine == "fast":
            span = integrate_span_fast(
                model, schedule, y, t_day * 24.0, next_day * 24.0, t_out * 24.0, arrays=arrays
            )
        else:
            span = integrate_span(
                model, schedule, y, t_day * 24.0, next_day * 24.0, t_out * 24.0, solver
            )
        pieces_t.append(t_out)
        pieces_y.append(span.y_out)
        pieces_u.append(span.u_out)
        pieces_o.append(span.outputs)
        if span.status != "success":
            status, message = span.status, span.message
            break
        y, t_day = span.y_end, next_day
        if final:
            break
        while st.queue and st.queue[0][0] <= t_day + _EPS:
            _, _, _, action = heapq.heappop(st.queue)
            _dispatch(st, model, y, t_day, action)

    t_all = np.concatenate(pieces_t)
    y_all = np.concatenate(pieces_y, axis=1)
    u_all = np.concatenate(pieces_u, axis=1)
    if all(o is not None for o in pieces_o):  # the fast engine recorded them as it went
        o_all = np.concatenate(pieces_o, axis=1)
        outputs = dict(zip(OUTPUTS, o_all, strict=True))
    else:
        outputs = model.outputs(y_all, u_all)
    table = pd.DataFrame({"t_days": t_all, **outputs})
    states = pd.DataFrame(y_all.T, columns=list(STATE_NAMES))
    states.insert(0, "t_days", t_all)
    regimen = _regimen(st)
    provenance = {
        "ketadur_version": __version__,
        "engine": f"{engine} (adaptive protocol runner)",
        "solver": (
            {"method": solver.method, "rtol": solver.rtol, "atol": solver.atol}
            if engine == "reference"
            else dataclasses.asdict(FastSettings())
        ),
        "model_hash": model_hash(patient),
        "protocol": protocol.name,
        "arm": chosen.name,
        "seed": seed,
        "regimen": regimen.model_dump(mode="json"),
        "patient": patient.subject_id,
    }
    result = SimulationResult(table, states, status, message, provenance)  # type: ignore[arg-type]
    return ProtocolRun(
        protocol=protocol,
        arm=chosen.name,
        patient=patient,
        seed=seed,
        result=result,
        regimen=regimen,
        events=_given_events(st),
        assessments=_assessment_table(st, patient.subject_id, chosen.name),
        decisions=pd.DataFrame(st.decisions, columns=["t_days", "phase", "decision", "detail"]),
        phases_entered=tuple(p.phase.name for p in st.entered),
    )


# ------------------------------------------------------------------------------------- actions


def _dispatch(st: _RunState, model: CompiledModel, y: NDArray, t: float, action: tuple) -> None:
    kind = action[0]
    if kind == "assess":
        _, measures, phase_index, source = action
        values = _read(model, y, measures)
        new_madrs = False
        for measure in measures:
            key = (round(t, 9), measure)
            if key in st.taken:  # the same rating planned twice (e.g. baseline and pre-dose)
                continue
            st.taken.add(key)
            observed: float | None = values[measure]
            if measure == "madrs" and st.rater is not None:
                observed = st.rater.rate(values[measure])
            new_madrs = new_madrs or (measure == "madrs" and observed is not None)
            st.assessments.append(
                {
                    "t_days": t,
                    "phase_index": phase_index,
                    "measure": measure,
                    "value": values[measure],
                    "observed": observed,
                    "source": source,
                }
            )
        current = st.current
        if new_madrs and not st.exited and current and current.index == phase_index:
            _apply_rules(st, t)
    elif kind == "phase":
        _start_phase(st, action[1], t)
    elif kind == "maintain":
        _maintenance_dose(st, model, y, t, action[1])


def _read(model: CompiledModel, y: NDArray, measures: tuple[str, ...]) -> dict[str, float]:
    out = model.outputs(y[:, None], np.zeros((len(INPUT_NAMES), 1)))
    return {m: float(out[MEASURE_OUTPUT[m]][0]) for m in measures}


def _madrs_history(st: _RunState, phase_index: int, since_day: float = -1.0) -> list[float]:
    """The MADRS ratings seen in a phase (after ``since_day``), missed visits left out."""
    return [
        a["observed"]
        for a in st.assessments
        if a["measure"] == "madrs"
        and a["phase_index"] == phase_index
        and a["t_days"] > since_day
        and a["observed"] is not None
    ]


def _baseline(st: _RunState) -> float:
    return next(a["observed"] for a in st.assessments if a["measure"] == "madrs")


def _start_phase(st: _RunState, index: int, t: float) -> None:
    if st.exited:
        return
    plan = st.plans[index]
    entry = plan.phase.entry
    if entry.require is not None:
        definition = st.protocol.endpoints[entry.require]
        prev = st.plans[index - 1]
        history = _madrs_history(st, prev.index)
        if not definition.met(history, _baseline(st)):
            _exit(st, t, f"{plan.phase.name}: does not meet '{entry.require}'")
            return
    if entry.fraction < 1.0:
        u = float(np.random.default_rng([st.seed, index]).random())
        if u >= entry.fraction:
            _exit(st, t, f"{plan.phase.name}: not in the randomised {entry.fraction:g}")
            return
    st.current = plan
    st.entered.append(plan)
    st.regimen_changes += 1
    st.maintenance = None
    st.log(t, "entered", plan.phase.name)
    interval = next((r for r in plan.phase.rules if isinstance(r, IntervalRule)), None)
    for d in plan.doses:
        if interval is not None and d.drug_index == interval.drug:
            continue
        _give(st, dose_of(d), plan, "planned")
    for day, measures in plan.assessments:
        if day <= st.protocol.duration_days + _EPS:
            st.push(day, _ASSESS, ("assess", measures, index, "planned"))
    if plan.end_day < st.protocol.duration_days - _EPS:
        st.push(plan.end_day, _ASSESS, ("assess", ("madrs",), index, "phase end"))
    if interval is not None:
        _start_maintenance(st, plan, interval)


def _exit(st: _RunState, t: float, why: str) -> None:
    """The patient leaves treatment (no later phase is entered)."""
    st.log(t, "not entered", why)
    st.exited = True
    st.current = None


def _give(st: _RunState, dose: Dose, plan: PhasePlan, source: str) -> None:
    """Record a dose (taking effect at its time) and queue its infusion-anchored assessments."""
    st.doses.append((dose, plan.phase.name, source))
    st.regimen_changes += 1
    for hours, measures in plan.infusion_anchored:
        t = dose.day + hours / 24.0
        if t <= st.protocol.duration_days + _EPS:
            st.push(t, _ASSESS, ("assess", measures, plan.index, "post-dose"))


def _apply_rules(st: _RunState, t: float) -> None:
    plan = st.current
    assert plan is not None
    baseline = _baseline(st)
    madrs_now = _madrs_history(st, plan.index)[-1]
    for k, rule in enumerate(plan.phase.rules):
        if isinstance(rule, StopRule) and not st.stopped:
            if st.protocol.endpoints[rule.on].met(_madrs_history(st, plan.index), baseline):
                st.stopped = True
                cancelled = [d for d in st.doses if d[0].day >= t - _EPS]
                st.doses = [d for d in st.doses if d[0].day < t - _EPS]
                st.regimen_changes += 1
                st.maintenance = None
                st.log(t, "stop", f"'{rule.on}' met; {len(cancelled)} planned doses cancelled")
        elif isinstance(rule, BoosterRule) and not st.stopped:
            history = _madrs_history(st, plan.index, st.booster_since.get(k, -1.0))
            if st.protocol.endpoints[rule.on].met(history, baseline):
                _booster(st, plan, k, rule, t)
        elif isinstance(rule, IntervalRule) and st.maintenance is not None:
            _maintenance_check(st, madrs_now, t)


def _ketamine_days(st: _RunState) -> list[float]:
    return sorted(d.day for d, _, _ in st.doses if d.drug not in PLACEBOS)


def _dose_allowed(st: _RunState, plan: PhasePlan, day: float) -> str:
    """Why a ketamine dose on ``day`` is not allowed ('' if it is)."""
    lim = st.protocol.limits
    spacing = lim.min_dose_spacing_hours / 24.0
    if any(abs(day - other) < spacing - _EPS for other in _ketamine_days(st)):
        return f"another dose within limits.min_dose_spacing_hours={lim.min_dose_spacing_hours:g}"
    n_phase = sum(1 for d, ph, _ in st.doses if ph == plan.phase.name and d.drug not in PLACEBOS)
    if plan.phase.max_doses is not None and n_phase >= plan.phase.max_doses:
        return f"max_doses={plan.phase.max_doses} reached"
    if lim.max_doses is not None and len(_ketamine_days(st)) >= lim.max_doses:
        return f"limits.max_doses={lim.max_doses} reached"
    if day >= plan.end_day - _EPS:
        return "after the end of the phase"
    return ""


def _booster(st: _RunState, plan: PhasePlan, k: int, rule: BoosterRule, t: float) -> None:
    given = st.boosters_given.get(k, 0)
    if rule.max_boosters is not None and given >= rule.max_boosters:
        return
    day = t + rule.delay_hours / 24.0
    earlier = [d for d in _ketamine_days(st) if d <= day + _EPS]
    if earlier:  # wait for the minimum spacing after the last dose
        day = max(day, earlier[-1] + st.protocol.limits.min_dose_spacing_hours / 24.0)
    why = _dose_allowed(st, plan, day)
    if why:
        st.log(t, "booster skipped", f"'{rule.on}' met; {why}")
        st.booster_since[k] = t
        return
    dose = Dose(day=day, **rule.dose.model_dump())
    _give(st, dose, plan, f"rule {k}: booster on {rule.on}")
    st.boosters_given[k] = given + 1
    st.booster_since[k] = day
    st.log(t, "booster", f"'{rule.on}' met; booster on day {day:.3f}")


def _start_maintenance(st: _RunState, plan: PhasePlan, rule: IntervalRule) -> None:
    reg = plan.phase.drugs[rule.drug]
    sched = reg.schedule
    assert sched.every_days is not None
    until = plan.end_day if sched.until_day is None else plan.start_day + sched.until_day
    st.maintenance = _Maintenance(
        rule=rule,
        plan=plan,
        interval_days=sched.every_days,
        next_day=plan.start_day + sched.from_day,
        until_day=min(until, plan.end_day),
        remaining=sched.count,
    )
    st.push(st.maintenance.next_day, _MAINTAIN, ("maintain", 0))


def _maintenance_check(st: _RunState, madrs: float, t: float) -> None:
    m = st.maintenance
    assert m is not None
    rule = m.rule
    if rule.lengthen_at_most_madrs is not None and madrs > rule.lengthen_at_most_madrs:
        m.all_stable = False
    if m.last_dose_day is None or madrs <= rule.shorten_above_madrs or m.shortened:
        return
    m.all_stable = False
    m.stable_count = 0
    m.shortened = True
    new_interval = max(m.interval_days - rule.step_days, rule.min_interval_days)
    new_next = max(m.last_dose_day + new_interval, t)
    if new_interval == m.interval_days and new_next >= m.next_day - _EPS:
        return  # already at the shortest interval: nothing changes
    detail = f"MADRS {madrs:.1f} > {rule.shorten_above_madrs:g}: interval {m.interval_days:g}"
    m.interval_days = new_interval
    if new_next < m.next_day - _EPS:
        m.next_day = new_next
        m.version += 1
        st.push(new_next, _MAINTAIN, ("maintain", m.version))
    st.log(
        t, "interval shortened", f"{detail} -> {new_interval:g} d; next dose day {m.next_day:.2f}"
    )


def _maintenance_dose(
    st: _RunState, model: CompiledModel, y: NDArray, t: float, version: int
) -> None:
    m = st.maintenance
    if m is None or version != m.version or st.stopped or st.exited:
        return
    if t >= m.until_day - _EPS or (m.remaining is not None and m.remaining <= 0):
        return
    madrs = _read(model, y, ("madrs",))["madrs"]
    rule = m.rule
    if m.last_dose_day is not None and rule.lengthen_at_most_madrs is not None:
        stable = m.all_stable and madrs <= rule.lengthen_at_most_madrs
        m.stable_count = m.stable_count + 1 if stable else 0
        if m.stable_count >= rule.stable_doses and m.interval_days < rule.max_interval_days:
            old = m.interval_days
            m.interval_days = min(old + rule.step_days, rule.max_interval_days)
            m.stable_count = 0
            st.log(t, "interval lengthened", f"stable: interval {old:g} -> {m.interval_days:g} d")
    why = _dose_allowed(st, m.plan, t)
    if why:
        st.log(t, "maintenance dose skipped", why)
    else:
        reg = m.plan.phase.drugs[rule.drug]
        dose = Dose(day=t, **reg.dose_spec().model_dump())
        _give(st, dose, m.plan, f"rule: adjust_interval ({m.interval_days:g} d)")
        m.last_dose_day = t
        if m.remaining is not None:
            m.remaining -= 1
    m.shortened, m.all_stable = False, True
    m.next_day = t + m.interval_days
    m.version += 1
    st.push(m.next_day, _MAINTAIN, ("maintain", m.version))


# ------------------------------------------------------------------------------------- helpers


def _regimen(st: _RunState) -> Regimen:
    return regimen_of(st.entered, [d for d, _, _ in st.doses], st.protocol)


def _pending(regimen: Regimen, t_day: float) -> Regimen:
    """``regimen`` less the doses and sessions that are over by ``t_day`` (infusion and
    expectancy cue both ended): their effect is in the state already, and compiling them again
    at every decision point made long adaptive protocols cost time quadratic in their doses."""
    cue_days = EXPECTANCY_CUE_H / 24.0
    doses = tuple(
        d
        for d in regimen.doses
        if d.day + max(d.infusion_minutes / 1440.0, cue_days) >= t_day - _EPS
    )
    sessions = tuple(s for s in regimen.sessions if s.day >= t_day - _EPS)
    return regimen.model_copy(update={"doses": doses, "sessions": sessions})


def _given_events(st: _RunState) -> list[Event]:
    events: list[Event] = []
    for plan in st.entered:
        events += phase_events(plan, st.weight_kg, st.protocol.duration_days, planned=False)
    for dose, phase, source in st.doses:
        events += dose_events(dose, st.weight_kg, phase, source)
    names = {p.index: p.phase.name for p in st.plans}
    for a in st.assessments:
        events += assessment_events(
            a["t_days"], (a["measure"],), names[a["phase_index"]], a["source"]
        )
    return sort_events([e for e in events if e.t_days <= st.protocol.duration_days + _EPS])


def _assessment_table(st: _RunState, subject_id: str, arm: str) -> pd.DataFrame:
    names = {p.index: p.phase.name for p in st.plans}
    rows = [
        {
            "subject_id": subject_id,
            "arm": arm,
            "phase": names[a["phase_index"]],
            "t_days": a["t_days"],
            "measure": a["measure"],
            "value": a["value"],
            "observed": np.nan if a["observed"] is None else a["observed"],
            "source": a["source"],
        }
        for a in st.assessments
    ]
    cols = ["subject_id", "arm", "phase", "t_days", "measure", "value", "observed", "source"]
    frame = pd.DataFrame(rows, columns=cols)
    return frame.sort_values(["t_days", "measure"], kind="stable").reset_index(drop=True)
