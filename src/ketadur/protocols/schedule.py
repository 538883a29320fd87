"""The protocol compiler: protocol + patient -> ordered, typed events.

Planning expands every schedule of an arm into absolute days, phase by phase, as if every patient
entered every phase (the adaptive runner, :mod:`ketadur.protocols.execute`, then decides at run time
who enters a phase and which rule-driven doses are added). Compiling turns the plan into events for
one patient (doses in mg for the patient's weight, infusion rates) and into the
:class:`~ketadur.regimen.Regimen` the engine integrates.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from ketadur.errors import KetadurInputError
from ketadur.model.patient import Patient
from ketadur.protocols.schema import (
    MEASURE_OUTPUT,
    WEEKDAYS,
    Arm,
    DrugRegimen,
    Phase,
    Protocol,
    phase_starts,
)
from ketadur.regimen import (
    PLACEBOS,
    AdjunctWindow,
    Dose,
    LifestyleChange,
    MedicationWindow,
    Regimen,
    TherapySession,
)

_EPS = 1e-9
EventKind = Literal[
    "phase_start",
    "assessment",
    "infusion_start",
    "infusion_stop",
    "bolus",
    "placebo",
    "session",
    "adjunct_start",
    "adjunct_stop",
    "medication_start",
    "medication_stop",
    "lifestyle",
]
EVENT_ORDER: dict[str, int] = {k: i for i, k in enumerate(EventKind.__args__)}  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class PlannedDose:
    """A ketamine, esketamine or placebo (inert or midazolam) administration at ``t_days``."""

    t_days: float
    regimen: DrugRegimen
    phase_index: int
    drug_index: int


@dataclass(frozen=True)
class PhasePlan:
    """Everything one phase schedules, in absolute days."""

    index: int
    phase: Phase
    start_day: float
    end_day: float
    doses: tuple[PlannedDose, ...]
    adjunct_windows: tuple[tuple[float, float], ...]
    sessions: tuple[tuple[float, str], ...]
    assessments: tuple[tuple[float, tuple[str, ...]], ...]
    infusion_anchored: tuple[tuple[float, tuple[str, ...]], ...] = field(default=())
    """``each_infusion`` assessments as (hours after, measures), applied to every dose given."""


def _weekday(protocol: Protocol, day: float) -> int:
    return (WEEKDAYS.index(protocol.start_weekday) + math.floor(day + _EPS)) % 7


def _infusion_days(doses: list[PlannedDose]) -> set[int]:
    return {math.floor(d.t_days + _EPS) for d in doses if d.regimen.is_ketamine}


def plan_phase(
    protocol: Protocol, phase: Phase, index: int, start_day: float, at: str
) -> PhasePlan:
    """Expand one phase starting on ``start_day``; ``at`` is its field path (for errors)."""
    end_day = start_day + phase.duration_days
    wd = _weekday(protocol, start_day)

    def inside(t: float, path: str) -> float:
        if not (start_day - _EPS <= t < end_day - _EPS):
            raise KetadurInputError(
                path,
                f"day {t - start_day:g} of the phase is outside its {phase.duration_days:g} days",
                t,
            )
        return t

    doses: list[PlannedDose] = []
    for k, reg in enumerate(phase.drugs):
        if reg.anchor == "phase" and reg.drug != "dusp6_inhibitor":
            for off in reg.schedule.offsets_days(wd):
                t = inside(start_day + off, f"{at}.drugs[{k}].schedule")
                doses.append(PlannedDose(t, reg, index, k))
    doses.sort(key=lambda d: d.t_days)
    ket = [d.t_days for d in doses if d.regimen.is_ketamine]
    first = min(ket) if ket else None

    windows: list[tuple[float, float]] = []
    for k, reg in enumerate(phase.drugs):
        if reg.drug != "dusp6_inhibitor":
            continue
        anchor = start_day if reg.anchor == "phase" else first
        assert anchor is not None  # checked by the schema
        hours = reg.exposure_hours or 24.0
        for off in reg.schedule.offsets_days(_weekday(protocol, anchor)):
            t = inside(anchor + off, f"{at}.drugs[{k}].schedule")
            windows.append((t, t + hours / 24.0))
    merged: list[tuple[float, float]] = []
    for s, e in sorted(windows):
        if merged and s <= merged[-1][1] + _EPS:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))

    busy = _infusion_days(doses)
    sessions: list[tuple[float, str]] = []
    for k, plan in enumerate(phase.therapy):
        path = f"{at}.therapy[{k}]"
        anchor = start_day if plan.anchor == "phase" else first
        assert anchor is not None
        if plan.start_within_hours is not None:
            lo, hi = plan.start_within_hours
            anchor = _first_free(
                anchor + lo / 24.0, anchor + hi / 24.0, busy, plan.avoid_infusion_days
            )
            if anchor is None:
                raise KetadurInputError(
                    f"{path}.start_within_hours",
                    "no non-infusion day in the window",
                    plan.start_within_hours,
                )
        used: set[int] = set()
        for off in plan.schedule.offsets_days(_weekday(protocol, anchor)):
            t = anchor + off
            if plan.avoid_infusion_days:
                while math.floor(t + _EPS) in busy or math.floor(t + _EPS) in used:
                    t += 1.0
            used.add(math.floor(t + _EPS))
            sessions.append((inside(t, f"{path}.schedule"), plan.kind))

    assessments: list[tuple[float, tuple[str, ...]]] = []
    anchored: list[tuple[float, tuple[str, ...]]] = []
    for plan in phase.assessments:
        if plan.anchor == "each_infusion":
            anchored.extend((h, plan.measures) for h in plan.offsets_hours())
            continue
        anchor = start_day if plan.anchor == "phase" else first
        assert anchor is not None
        assessments.extend((anchor + h / 24.0, plan.measures) for h in plan.offsets_hours(wd))

    return PhasePlan(
        index=index,
        phase=phase,
        start_day=start_day,
        end_day=end_day,
        doses=tuple(doses),
        adjunct_windows=tuple(merged),
        sessions=tuple(sorted(sessions)),
        assessments=tuple(sorted(assessments)),
        infusion_anchored=tuple(anchored),
    )


def _first_free(lo: float, hi: float, busy: set[int], avoid: bool) -> float | None:
    """Earliest time in ``[lo, hi]`` (stepping by whole days) not on a busy day when ``avoid``."""
    t = lo
    while t <= hi + _EPS:
        if not avoid or math.floor(t + _EPS) not in busy:
            return t
        t = math.floor(t + _EPS) + 1.0
    return None


def plan_arm(protocol: Protocol, arm: Arm) -> list[PhasePlan]:
    """Every phase of ``arm`` expanded, assuming every phase is entered."""
    i = protocol.arms.index(arm)
    return [
        plan_phase(protocol, phase, j, start, f"arms[{i}].phases[{j}]")
        for j, (phase, start) in enumerate(zip(arm.phases, phase_starts(arm), strict=True))
    ]


def check_planned_doses(protocol: Protocol) -> None:
    """Schedules inside their phases; ketamine doses not closer than the minimum spacing; dose
    counts within the phase and protocol maxima. Raises :class:`KetadurInputError`."""
    spacing_h = protocol.limits.min_dose_spacing_hours
    for i, arm in enumerate(protocol.arms):
        plans = plan_arm(protocol, arm)
        ket = sorted(
            (d for p in plans for d in p.doses if d.regimen.is_ketamine), key=lambda d: d.t_days
        )
        for a, b in itertools.pairwise(ket):
            gap_h = (b.t_days - a.t_days) * 24.0
            end_a = a.regimen.infusion_minutes / 60.0
            if gap_h < max(spacing_h, end_a) - 1e-6:
                raise KetadurInputError(
                    f"arms[{i}].phases[{b.phase_index}].drugs[{b.drug_index}].schedule",
                    f"doses on days {a.t_days:g} and {b.t_days:g} are {gap_h:g} h apart, closer "
                    f"than limits.min_dose_spacing_hours={spacing_h:g}"
                    + (" or overlapping" if gap_h < end_a else ""),
                    b.t_days,
                )
        for plan in plans:
            n = sum(d.regimen.is_ketamine for d in plan.doses)
            if plan.phase.max_doses is not None and n > plan.phase.max_doses:
                raise KetadurInputError(
                    f"arms[{i}].phases[{plan.index}].drugs",
                    f"schedules {n} doses, more than max_doses={plan.phase.max_doses}",
                    n,
                )
        if protocol.limits.max_doses is not None and len(ket) > protocol.limits.max_doses:
            raise KetadurInputError(
                f"arms[{i}]",
                f"schedules {len(ket)} doses, more than limits.max_doses",
                len(ket),
            )


# ---------------------------------------------------------------------------- events and regimen


@dataclass(frozen=True, slots=True)
class Event:
    """One typed event of a compiled schedule (times in days from the protocol start)."""

    t_days: float
    kind: EventKind
    phase: str
    drug: str = ""
    route: str = ""
    amount_mg: float = 0.0
    rate_mg_per_h: float = 0.0
    detail: str = ""
    source: str = "planned"


def dose_of(planned: PlannedDose) -> Dose:
    """The engine's :class:`Dose` for a planned administration."""
    reg = planned.regimen
    if reg.drug in PLACEBOS:
        return Dose(
            day=planned.t_days,
            drug=reg.drug,  # type: ignore[arg-type]
            route=reg.route or "iv",
            infusion_minutes=reg.infusion_minutes if reg.route == "iv" else 0.0,
        )
    spec = reg.dose_spec()
    return Dose(day=planned.t_days, **spec.model_dump())


def dose_events(dose: Dose, weight_kg: float, phase: str, source: str = "planned") -> list[Event]:
    """Events of one administration: infusion start/stop with rate, a bolus, or a placebo."""
    amount = dose.amount_mg(weight_kg)
    if dose.drug in PLACEBOS:
        return [Event(dose.day, "placebo", phase, dose.drug, dose.route, source=source)]
    if dose.route == "iv" and dose.infusion_minutes > 0:
        rate = amount / (dose.infusion_minutes / 60.0)
        stop = dose.day + dose.infusion_minutes / 1440.0
        return [
            Event(dose.day, "infusion_start", phase, dose.drug, "iv", amount, rate, source=source),
            Event(stop, "infusion_stop", phase, dose.drug, "iv", 0.0, 0.0, source=source),
        ]
    return [Event(dose.day, "bolus", phase, dose.drug, dose.route, amount, source=source)]


def assessment_events(
    t_days: float, measures: tuple[str, ...], phase: str, source: str = "planned"
) -> list[Event]:
    """One event per measure, in the order of :data:`MEASURE_OUTPUT`."""
    order = list(MEASURE_OUTPUT)
    return [
        Event(t_days, "assessment", phase, detail=m, source=source)
        for m in sorted(set(measures), key=order.index)
    ]


def phase_events(
    plan: PhasePlan, weight_kg: float, duration_days: float, *, planned: bool = True
) -> list[Event]:
    """The events of one phase (those beyond ``duration_days`` dropped). With ``planned=False``
    doses and assessments are left out (the runner records those it actually gives and takes)."""
    name = plan.phase.name
    ev = [Event(plan.start_day, "phase_start", name, detail=plan.phase.entry.model_dump_json())]
    for d in plan.doses if planned else ():
        ev += dose_events(dose_of(d), weight_kg, name)
        for hours, measures in plan.infusion_anchored:
            ev += assessment_events(d.t_days + hours / 24.0, measures, name)
    for s, e in plan.adjunct_windows:
        ev += [
            Event(s, "adjunct_start", name, drug="dusp6_inhibitor"),
            Event(e, "adjunct_stop", name, drug="dusp6_inhibitor"),
        ]
    ev += [Event(t, "session", name, detail=kind) for t, kind in plan.sessions]
    if plan.phase.oral_antidepressant is not None:
        kind = "medication_start" if plan.phase.oral_antidepressant else "medication_stop"
        ev.append(Event(plan.start_day, kind, name, drug="oral_antidepressant", route="oral"))
    if plan.phase.lifestyle is not None:
        ls = plan.phase.lifestyle
        detail = (
            f"exercise {ls.exercise_sessions_per_week:g}/week, sleep {ls.sleep_h_per_night:g} h"
        )
        ev.append(Event(plan.start_day, "lifestyle", name, detail=detail))
    for t, measures in plan.assessments if planned else ():
        ev += assessment_events(t, measures, name)
    return [e for e in ev if e.t_days <= duration_days + _EPS]


def sort_events(events: list[Event]) -> list[Event]:
    """Chronological; at equal times the phase start, then assessments (a rating at a dose's time
    is the pre-dose rating), then what is given."""
    return sorted(events, key=lambda e: (round(e.t_days, 9), EVENT_ORDER[e.kind]))


def events_frame(events: list[Event]) -> pd.DataFrame:
    """Events as a table (one row each)."""
    columns = list(Event.__dataclass_fields__)
    return pd.DataFrame([[getattr(e, c) for c in columns] for e in events], columns=columns)


@dataclass(frozen=True)
class CompiledArm:
    """One arm compiled for one patient, assuming every phase is entered."""

    protocol: Protocol
    arm: Arm
    patient: Patient
    plans: tuple[PhasePlan, ...]

    @property
    def events(self) -> list[Event]:
        evs = [
            e
            for p in self.plans
            for e in phase_events(p, self.patient.weight_kg, self.protocol.duration_days)
        ]
        return sort_events(evs)

    def table(self) -> pd.DataFrame:
        """The events as a table."""
        return events_frame(self.events)

    def regimen(self) -> Regimen:
        """The fixed regimen given if every phase is entered and no rule fires."""
        return fixed_regimen(self.protocol, self.arm)


def regimen_of(
    plans: list[PhasePlan] | tuple[PhasePlan, ...], doses: list[Dose], protocol: Protocol
) -> Regimen:
    """The engine regimen for the entered ``plans`` and the doses actually given."""
    sessions = [TherapySession(day=t, kind=k) for p in plans for t, k in p.sessions]  # type: ignore[arg-type]
    adjuncts = [AdjunctWindow(start_day=s, end_day=e) for p in plans for s, e in p.adjunct_windows]
    lifestyle = [
        LifestyleChange(start_day=p.start_day, **p.phase.lifestyle.model_dump())
        for p in plans
        if p.phase.lifestyle is not None
    ]
    medications: list[MedicationWindow] = []
    on_since: float | None = None
    for p in plans:
        flag = p.phase.oral_antidepressant
        if flag and on_since is None:
            on_since = p.start_day
        elif flag is False and on_since is not None:
            if p.start_day > on_since:
                medications.append(MedicationWindow(start_day=on_since, end_day=p.start_day))
            on_since = None
    if on_since is not None:
        medications.append(MedicationWindow(start_day=on_since))
    return Regimen(
        name=protocol.name,
        doses=tuple(sorted(doses, key=lambda d: d.day)),
        sessions=tuple(sessions),
        adjuncts=tuple(adjuncts),
        lifestyle=tuple(lifestyle),
        medications=tuple(medications),
    )


def fixed_regimen(protocol: Protocol, arm: Arm | str | None = None) -> Regimen:
    """The regimen of ``arm`` (a name, or the first if None) if every phase is entered and no
    rule fires; the same for every patient (doses in mg/kg scale with weight when given)."""
    chosen = arm if isinstance(arm, Arm) else protocol.arm(arm)
    plans = plan_arm(protocol, chosen)
    return regimen_of(plans, [dose_of(d) for p in plans for d in p.doses], protocol)


def compile_protocol(protocol: Protocol, patient: Patient, arm: str | None = None) -> CompiledArm:
    """Compile ``arm`` (the first if None) of ``protocol`` for ``patient``."""
    chosen = protocol.arm(arm)
    return CompiledArm(protocol, chosen, patient, tuple(plan_arm(protocol, chosen)))
