"""Plain-language descriptions of protocol parts (for ``protocols show`` and the diagrams)."""

from __future__ import annotations

from ketadur.protocols.schema import (
    AssessmentPlan,
    BoosterRule,
    DaySchedule,
    DrugRegimen,
    Entry,
    IntervalRule,
    Phase,
    Protocol,
    Rule,
    TherapyPlan,
)

_DRUG = {
    "racemic_ketamine": "ketamine",
    "esketamine": "esketamine",
    "placebo": "placebo",
    "midazolam": "midazolam (active placebo)",
    "dusp6_inhibitor": "DUSP6 inhibitor",
}
_ROUTE = {"iv": "IV", "intranasal": "intranasal", "oral": "oral", "im": "IM"}


def schedule_text(s: DaySchedule) -> str:
    """E.g. ``3/week (mon, wed, fri) x 2 wk``, ``every 7 d x 4``, ``days 0, 3``."""
    if s.days is not None:
        return "day " + ", ".join(f"{d:g}" for d in sorted(s.days))
    if s.per_week is not None:
        days = f" ({', '.join(s.weekdays)})" if s.weekdays else ""
        return f"{s.per_week}/week{days} x {s.weeks} wk"
    start = f" from day {s.from_day:g}" if s.from_day else ""
    end = f" x {s.count}" if s.count is not None else f" to day {s.until_day:g}"
    return f"every {s.every_days:g} d{start}{end}"


def drug_text(d: DrugRegimen) -> str:
    """E.g. ``ketamine 0.5 mg/kg IV over 40 min, 3/week x 2 wk``."""
    if d.drug == "dusp6_inhibitor":
        anchor = " from the first infusion" if d.anchor == "first_infusion" else ""
        hours = d.exposure_hours or 24.0
        return f"DUSP6 inhibitor ({hours:g} h each), {schedule_text(d.schedule)}{anchor}"
    dose = ""
    if d.dose_mg_per_kg is not None:
        dose = f" {d.dose_mg_per_kg:g} mg/kg"
    elif d.dose_mg is not None:
        dose = f" {d.dose_mg:g} mg"
    over = f" over {d.infusion_minutes:g} min" if d.infusion_minutes else ""
    return f"{_DRUG[d.drug]}{dose} {_ROUTE[d.route or 'iv']}{over}, {schedule_text(d.schedule)}"


def therapy_text(t: TherapyPlan) -> str:
    """E.g. ``cbt: day 0, from 24-48 h after the first infusion, not on infusion days``."""
    parts = [f"{t.kind}: {schedule_text(t.schedule)}"]
    if t.start_within_hours is not None:
        lo, hi = t.start_within_hours
        parts.append(f"starting {lo:g}-{hi:g} h after the first infusion")
    elif t.anchor == "first_infusion":
        parts.append("from the first infusion")
    if t.avoid_infusion_days:
        parts.append("not on infusion days")
    return ", ".join(parts)


def assessment_text(a: AssessmentPlan) -> str:
    """E.g. ``madrs, vitals: 0, 24 h after each infusion``."""
    what = ", ".join(a.measures)
    if a.schedule is not None:
        return f"{what}: {schedule_text(a.schedule)}"
    if a.minutes_after is not None:
        when = ", ".join(f"{m:g}" for m in a.minutes_after) + " min"
    else:
        when = ", ".join(f"{h:g}" for h in a.hours_after or ()) + " h"
    anchor = {"phase": "the phase start", "first_infusion": "the first infusion"}.get(
        a.anchor, "each infusion"
    )
    return f"{what}: {when} after {anchor}"


def entry_text(e: Entry, protocol: Protocol) -> str:
    """E.g. ``responders (>= 50% MADRS improvement)``; ``all``."""
    text = "all"
    if e.require is not None:
        definition = protocol.endpoints[e.require].description
        text = e.require.replace("_", " ") + (f" ({definition})" if definition else "")
    if e.fraction < 1:
        text += f", randomised {100 * e.fraction:g}%"
    return text


def rule_text(r: Rule) -> str:
    """E.g. ``booster on relapse (max 3)``."""
    if isinstance(r, BoosterRule):
        cap = f", max {r.max_boosters}" if r.max_boosters is not None else ""
        delay = f" after {r.delay_hours:g} h" if r.delay_hours else ""
        return f"booster on {r.on}{delay}{cap}"
    if isinstance(r, IntervalRule):
        longer = (
            f"; lengthen by {r.step_days:g} d after {r.stable_doses} stable intervals "
            f"(MADRS <= {r.lengthen_at_most_madrs:g})"
            if r.lengthen_at_most_madrs is not None
            else ""
        )
        return (
            f"interval {r.min_interval_days:g}-{r.max_interval_days:g} d: shorten by "
            f"{r.step_days:g} d if MADRS > {r.shorten_above_madrs:g} before the next dose{longer}"
        )
    return f"stop dosing on {r.on}"


def phase_lines(phase: Phase) -> list[str]:
    """Every component of a phase, one line each."""
    lines = [drug_text(d) for d in phase.drugs]
    lines += [therapy_text(t) for t in phase.therapy]
    if phase.oral_antidepressant is not None:
        lines.append(
            "oral antidepressant " + ("started" if phase.oral_antidepressant else "stopped")
        )
    if phase.lifestyle is not None:
        ls = phase.lifestyle
        lines.append(
            f"lifestyle: exercise {ls.exercise_sessions_per_week:g}/week, "
            f"sleep {ls.sleep_h_per_night:g} h"
        )
    lines += ["rule: " + rule_text(r) for r in phase.rules]
    lines += ["assess " + assessment_text(a) for a in phase.assessments]
    return lines
