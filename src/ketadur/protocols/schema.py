"""The protocol language: treatment protocols as validated data (DESIGN section 4).

A :class:`Protocol` has arms; an arm is a sequence of :class:`Phase` objects run one after the
other. A phase has an entry criterion (everyone, or those meeting one of the protocol's own endpoint
definitions at the end of the previous phase, optionally a randomised fraction of them), and holds
drug regimens, therapy sessions, assessments, lifestyle and background-medication settings, and
adaptive rules that the simulation evaluates as it runs (booster on relapse, interval adjustment,
stop). Times inside a phase are days from the phase start (or from its first infusion) unless a
field says hours. Every cross-field rule raises :class:`~ketadur.errors.KetadurInputError` naming
the path of the offending field, e.g. ``arms[0].phases[1].entry.require``.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ketadur.errors import KetadurInputError
from ketadur.regimen import (
    PLACEBOS,
    PROTOCOL1_DOSE_MG_PER_KG,
    PROTOCOL1_INFUSION_MIN,
    SessionKind,
    check_dose_fields,
)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_WEEKDAYS: dict[int, tuple[Weekday, ...]] = {
    1: ("mon",),
    2: ("mon", "thu"),
    3: ("mon", "wed", "fri"),
    4: ("mon", "tue", "thu", "fri"),
    5: ("mon", "tue", "wed", "thu", "fri"),
    6: ("mon", "tue", "wed", "thu", "fri", "sat"),
    7: WEEKDAYS,
}
"""Weekday pattern used for "N per week" when none is given (spread as evenly as a clinic would)."""

DrugName = Literal["racemic_ketamine", "esketamine", "dusp6_inhibitor", "placebo", "midazolam"]
KETAMINES = ("racemic_ketamine", "esketamine")
Measure = Literal["madrs", "cadss", "vitals", "plasma_bdnf", "plasma_ketamine"]
MEASURE_OUTPUT: dict[str, str] = {
    "madrs": "madrs",
    "cadss": "cadss",
    "vitals": "sbp_mmhg",
    "plasma_bdnf": "plasma_bdnf_ng_per_ml",
    "plasma_ketamine": "plasma_ketamine_ng_per_ml",
}
"""The model output each assessment reads (vitals: systolic blood pressure)."""

ENTRY_SHORTHANDS: dict[str, str | None] = {
    "all": None,
    "responders": "response",
    "remitters": "remission",
    "stable_remitters": "stable_remission",
    "stable_responders": "stable_response",
}
"""``entry: responders`` means ``entry: {require: response}``, and so on."""

_EPS_DAYS = 1e-9


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DaySchedule(_Strict):
    """When something happens, in days from an anchor. Give exactly one form:

    - ``days: [0, 2, 4]`` explicit days;
    - ``per_week: 3, weeks: 2`` (optionally ``weekdays: [mon, wed, fri]``) on calendar weekdays;
    - ``every_days: 7`` with ``until_day`` or ``count`` (optionally ``from_day``).
    """

    days: tuple[float, ...] | None = None
    per_week: int | None = Field(None, ge=1, le=7)
    weeks: int | None = Field(None, ge=1, le=520)
    weekdays: tuple[Weekday, ...] | None = None
    every_days: float | None = Field(None, gt=0, le=365)
    from_day: float = Field(0.0, ge=0)
    until_day: float | None = Field(None, gt=0)
    count: int | None = Field(None, ge=1, le=1000)

    @model_validator(mode="after")
    def _one_form(self) -> DaySchedule:
        explicit = self.days is not None
        weekly = self.per_week is not None or self.weeks is not None or self.weekdays is not None
        interval = self.every_days is not None
        if explicit + weekly + interval != 1:
            raise ValueError("give exactly one of: days; per_week + weeks; every_days")
        if explicit:
            if not self.days:
                raise ValueError("days must not be empty")
            if any(d < 0 for d in self.days):
                raise KetadurInputError("days", "times must not be negative", self.days)
            if len(set(self.days)) != len(self.days):
                raise KetadurInputError("days", "times must not repeat", self.days)
        if weekly:
            if self.per_week is None or self.weeks is None:
                raise ValueError("per_week and weeks go together")
            if self.weekdays is not None and (
                len(self.weekdays) != self.per_week or len(set(self.weekdays)) != self.per_week
            ):
                raise KetadurInputError(
                    "weekdays", f"must name {self.per_week} different weekdays", self.weekdays
                )
        if interval and (self.until_day is None) == (self.count is None):
            raise ValueError("every_days needs exactly one of until_day or count")
        if self.until_day is not None and self.until_day <= self.from_day:
            raise KetadurInputError("until_day", "must be after from_day", self.until_day)
        if (self.count is not None or self.until_day is not None) and not interval:
            raise ValueError("count and until_day go with every_days")
        return self

    def offsets_days(self, anchor_weekday: int = 0) -> tuple[float, ...]:
        """Sorted days from the anchor; ``anchor_weekday`` is the anchor's weekday (0 = Monday)."""
        if self.days is not None:
            return tuple(sorted(self.days))
        if self.per_week is not None:
            assert self.weeks is not None
            pattern = self.weekdays or DEFAULT_WEEKDAYS[self.per_week]
            shifts = sorted((WEEKDAYS.index(w) - anchor_weekday) % 7 for w in pattern)
            return tuple(7.0 * week + s for week in range(self.weeks) for s in shifts)
        assert self.every_days is not None
        if self.count is not None:
            return tuple(self.from_day + i * self.every_days for i in range(self.count))
        assert self.until_day is not None
        n = int((self.until_day - self.from_day) / self.every_days + _EPS_DAYS)
        return tuple(
            self.from_day + i * self.every_days
            for i in range(n + 1)
            if self.from_day + i * self.every_days < self.until_day - _EPS_DAYS
        )


class DoseSpec(_Strict):
    """One administration of racemic ketamine or esketamine (used by drug regimens and boosters)."""

    drug: Literal["racemic_ketamine", "esketamine"] = "racemic_ketamine"
    route: Literal["iv", "intranasal", "oral", "im"] = "iv"
    dose_mg_per_kg: float | None = Field(None, gt=0, le=10)
    dose_mg: float | None = Field(None, gt=0, le=1000)
    infusion_minutes: float = Field(0.0, ge=0, le=24 * 60)

    @model_validator(mode="after")
    def _check(self) -> DoseSpec:
        check_dose_fields(self)
        return self


PROTOCOL1_DOSE = DoseSpec(
    dose_mg_per_kg=PROTOCOL1_DOSE_MG_PER_KG, infusion_minutes=PROTOCOL1_INFUSION_MIN
)
"""Seed Protocol 1: racemic ketamine 0.5 mg/kg over 40 minutes (the default booster)."""


class DrugRegimen(_Strict):
    """A drug given on a schedule.

    ``racemic_ketamine`` and ``esketamine`` need a dose (mg/kg of actual body weight, or fixed mg);
    ``placebo`` is an inert administration on the same route and schedule and ``midazolam`` the
    active placebo of ketamine trials (both act through expectancy only); ``dusp6_inhibitor`` is an
    experimental adjunct (preclinical), present for ``exposure_hours`` after each administration.
    ``anchor: first_infusion`` counts the schedule from the phase's first ketamine dose.
    """

    drug: DrugName
    route: Literal["iv", "intranasal", "oral", "im"] | None = None
    dose_mg_per_kg: float | None = Field(None, gt=0, le=10)
    dose_mg: float | None = Field(None, gt=0, le=1000)
    infusion_minutes: float = Field(0.0, ge=0, le=24 * 60)
    exposure_hours: float | None = Field(None, gt=0, le=24 * 365)
    schedule: DaySchedule
    anchor: Literal["phase", "first_infusion"] = "phase"
    label: str = ""

    @model_validator(mode="after")
    def _check(self) -> DrugRegimen:
        if self.drug in KETAMINES:
            if self.route is None:
                raise KetadurInputError("route", f"is required for {self.drug}", None)
            if self.exposure_hours is not None:
                raise KetadurInputError(
                    "exposure_hours", "applies to an adjunct only", self.exposure_hours
                )
            check_dose_fields(self)
            if self.anchor == "first_infusion":
                raise KetadurInputError("anchor", "a ketamine regimen cannot anchor on itself", "")
        else:
            for name in ("dose_mg_per_kg", "dose_mg"):
                if getattr(self, name) is not None:
                    raise KetadurInputError(
                        name, f"the model has no dose-response for {self.drug}", getattr(self, name)
                    )
            if self.drug in PLACEBOS and self.route is None:
                raise KetadurInputError("route", f"is required for {self.drug}", None)
            if self.drug == "dusp6_inhibitor" and self.infusion_minutes:
                raise KetadurInputError("infusion_minutes", "use exposure_hours for an adjunct", 0)
        return self

    @property
    def is_ketamine(self) -> bool:
        return self.drug in KETAMINES

    def dose_spec(self) -> DoseSpec:
        """The single administration (ketamines only)."""
        return DoseSpec(
            drug=self.drug,  # type: ignore[arg-type]
            route=self.route or "iv",
            dose_mg_per_kg=self.dose_mg_per_kg,
            dose_mg=self.dose_mg,
            infusion_minutes=self.infusion_minutes,
        )


class TherapyPlan(_Strict):
    """Psychotherapy sessions on a schedule.

    With ``anchor: first_infusion`` the schedule counts from the phase's first ketamine dose, moved
    into ``start_within_hours`` after it (e.g. ``[24, 48]``: "begin CBT within 24-48 h of the first
    infusion"). ``avoid_infusion_days`` moves a session that falls on an infusion day to the next
    free day ("integration sessions on non-infusion days").
    """

    kind: SessionKind
    schedule: DaySchedule
    anchor: Literal["phase", "first_infusion"] = "phase"
    start_within_hours: tuple[float, float] | None = None
    avoid_infusion_days: bool = False

    @model_validator(mode="after")
    def _check(self) -> TherapyPlan:
        if self.start_within_hours is not None:
            lo, hi = self.start_within_hours
            if not (0 <= lo <= hi):
                raise KetadurInputError(
                    "start_within_hours", "must be [low, high] with 0 <= low <= high", (lo, hi)
                )
            if self.anchor != "first_infusion":
                raise KetadurInputError(
                    "start_within_hours", "needs anchor: first_infusion", self.anchor
                )
        return self


class AssessmentPlan(_Strict):
    """Measurements at times relative to the phase start, its first infusion or each infusion.

    Give ``hours_after`` (e.g. ``[24, 72, 168]`` after each infusion), ``minutes_after`` (e.g.
    ``[0, 240]`` for BDNF at baseline and 240 min) or a day ``schedule`` (from the phase start).
    Time 0 at an infusion is the pre-dose (baseline) measurement.
    """

    measures: tuple[Measure, ...] = Field(min_length=1)
    anchor: Literal["phase", "first_infusion", "each_infusion"] = "phase"
    hours_after: tuple[float, ...] | None = None
    minutes_after: tuple[float, ...] | None = None
    schedule: DaySchedule | None = None

    @model_validator(mode="after")
    def _check(self) -> AssessmentPlan:
        given = [x for x in (self.hours_after, self.minutes_after, self.schedule) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of hours_after, minutes_after or schedule")
        if self.schedule is not None and self.anchor != "phase":
            raise KetadurInputError("schedule", "goes with anchor: phase", self.anchor)
        for name in ("hours_after", "minutes_after"):
            times = getattr(self, name)
            if times is not None and (not times or any(h < 0 for h in times)):
                raise KetadurInputError(name, "must be non-empty and not negative", times)
        return self

    def offsets_hours(self, anchor_weekday: int = 0) -> tuple[float, ...]:
        """Times after the anchor, hours."""
        if self.schedule is not None:
            return tuple(24.0 * d for d in self.schedule.offsets_days(anchor_weekday))
        if self.minutes_after is not None:
            return tuple(m / 60.0 for m in self.minutes_after)
        return tuple(self.hours_after or ())


class LifestyleSetting(_Strict):
    """Exercise and sleep from the phase start on (held until a later phase changes them)."""

    exercise_sessions_per_week: float = Field(ge=0, le=14)
    sleep_h_per_night: float = Field(ge=2, le=14)


class EndpointDefinition(_Strict):
    """A trial's own definition of response, remission, relapse, etc., on MADRS assessments.

    An assessment qualifies when every threshold given holds (improvement is relative to the
    baseline MADRS at day 0); the endpoint is met when at least ``at_least`` of the last ``of_last``
    assessments qualify (``at_least = of_last = 2``: two consecutive assessments).
    """

    description: str = ""
    madrs_at_most: float | None = Field(None, ge=0, le=60)
    madrs_at_least: float | None = Field(None, ge=0, le=60)
    improvement_percent_at_least: float | None = Field(None, ge=0, le=100)
    improvement_percent_below: float | None = Field(None, gt=0, le=100)
    at_least: int = Field(1, ge=1, le=52)
    of_last: int = Field(1, ge=1, le=52)
    gap_days: tuple[float, float] | None = Field(
        None,
        description="Allowed days between consecutive visits of the run (e.g. [5, 15]); used by "
        "the trial analysis (ketadur.trials.endpoints).",
    )
    booster_needed: bool = Field(
        False,
        description="Also met when the protocol's rules give a booster (relapse defined as "
        "'booster needed'); with no threshold, only a booster counts. Used by time-to-event "
        "analyses of adaptive arms.",
    )

    @model_validator(mode="after")
    def _check(self) -> EndpointDefinition:
        if self.gap_days is not None and not 0 <= self.gap_days[0] <= self.gap_days[1]:
            raise KetadurInputError("gap_days", "must be [low, high] with 0 <= low <= high", 0)
        thresholds = (
            self.madrs_at_most,
            self.madrs_at_least,
            self.improvement_percent_at_least,
            self.improvement_percent_below,
        )
        if all(t is None for t in thresholds) and not self.booster_needed:
            raise ValueError(
                "give at least one threshold (madrs_at_most, madrs_at_least, ...) or "
                "booster_needed: true"
            )
        if self.at_least > self.of_last:
            raise KetadurInputError("at_least", f"must not exceed of_last={self.of_last}", 0)
        return self

    @property
    def has_thresholds(self) -> bool:
        """Whether any MADRS threshold is given (a booster-only definition has none)."""
        return any(
            t is not None
            for t in (self.madrs_at_most, self.madrs_at_least,
                      self.improvement_percent_at_least, self.improvement_percent_below)
        )  # fmt: skip

    def qualifies(self, madrs: float, baseline_madrs: float) -> bool:
        """Whether one assessment meets every threshold (never, for a booster-only definition)."""
        if not self.has_thresholds:
            return False
        improvement = 100.0 * (baseline_madrs - madrs) / baseline_madrs if baseline_madrs else 0.0
        return (
            (self.madrs_at_most is None or madrs <= self.madrs_at_most)
            and (self.madrs_at_least is None or madrs >= self.madrs_at_least)
            and (
                self.improvement_percent_at_least is None
                or improvement >= self.improvement_percent_at_least
            )
            and (
                self.improvement_percent_below is None
                or improvement < self.improvement_percent_below
            )
        )

    def met(self, madrs_history: list[float], baseline_madrs: float) -> bool:
        """Whether the endpoint holds given the MADRS assessments so far (oldest first)."""
        recent = madrs_history[-self.of_last :]
        if len(recent) < self.at_least:
            return False
        return sum(self.qualifies(m, baseline_madrs) for m in recent) >= self.at_least


class Entry(_Strict):
    """Who enters a phase: those meeting endpoint ``require`` at the end of the previous phase
    (everyone if omitted), then a randomised ``fraction`` of them."""

    require: str | None = None
    fraction: float = Field(1.0, gt=0, le=1)


def _entry_shorthand(value: Any) -> Any:
    if isinstance(value, str):
        if value not in ENTRY_SHORTHANDS:
            raise ValueError(f"must be one of {sorted(ENTRY_SHORTHANDS)} or a mapping")
        return {"require": ENTRY_SHORTHANDS[value]}
    return value


class BoosterRule(_Strict):
    """Give ``dose`` when endpoint ``on`` (e.g. relapse) is met at an assessment of this phase."""

    kind: Literal["booster"]
    on: str
    dose: DoseSpec = PROTOCOL1_DOSE
    delay_hours: float = Field(0.0, ge=0, le=24 * 28)
    max_boosters: int | None = Field(None, ge=1, le=100)


class IntervalRule(_Strict):
    """Adapt a maintenance interval while the simulation runs (seed Troubleshooting issue 2).

    Applies to ``drug`` (index into the phase's drugs; its schedule must be ``every_days``). When a
    MADRS assessment before the next planned dose exceeds ``shorten_above_madrs`` the interval
    shrinks by ``step_days`` (not below ``min_interval_days``; once per interval) and the next dose
    is brought forward; after ``stable_doses`` consecutive intervals with every MADRS at most
    ``lengthen_at_most_madrs`` it grows by ``step_days`` (not above ``max_interval_days``).
    """

    kind: Literal["adjust_interval"]
    drug: int = Field(0, ge=0)
    shorten_above_madrs: float = Field(ge=0, le=60)
    lengthen_at_most_madrs: float | None = Field(None, ge=0, le=60)
    step_days: float = Field(7.0, gt=0, le=56)
    min_interval_days: float = Field(7.0, gt=0, le=365)
    max_interval_days: float = Field(56.0, gt=0, le=365)
    stable_doses: int = Field(2, ge=1, le=52)

    @model_validator(mode="after")
    def _check(self) -> IntervalRule:
        if self.max_interval_days < self.min_interval_days:
            raise KetadurInputError(
                "max_interval_days", "must be at least min_interval_days", self.max_interval_days
            )
        if (
            self.lengthen_at_most_madrs is not None
            and self.lengthen_at_most_madrs > self.shorten_above_madrs
        ):
            raise KetadurInputError(
                "lengthen_at_most_madrs",
                "must not exceed shorten_above_madrs",
                self.lengthen_at_most_madrs,
            )
        return self


class StopRule(_Strict):
    """Stop all further dosing in the arm when endpoint ``on`` is met at an assessment."""

    kind: Literal["stop"]
    on: str


Rule = Annotated[BoosterRule | IntervalRule | StopRule, Field(discriminator="kind")]


class Phase(_Strict):
    """One phase of an arm (induction, maintenance, follow-up...)."""

    name: str = Field(min_length=1, max_length=60)
    duration_days: float = Field(gt=0, le=3650)
    entry: Annotated[Entry, Field(default_factory=Entry)]
    drugs: tuple[DrugRegimen, ...] = ()
    therapy: tuple[TherapyPlan, ...] = ()
    assessments: tuple[AssessmentPlan, ...] = ()
    lifestyle: LifestyleSetting | None = None
    oral_antidepressant: bool | None = Field(
        None, description="Start (true) or stop (false) a background oral antidepressant."
    )
    rules: tuple[Rule, ...] = ()
    max_doses: int | None = Field(None, ge=1, le=1000)

    _entry_shorthand = field_validator("entry", mode="before")(_entry_shorthand)

    @property
    def ketamine_regimens(self) -> tuple[DrugRegimen, ...]:
        return tuple(d for d in self.drugs if d.is_ketamine)


class Arm(_Strict):
    """A sequence of phases given to one group of patients."""

    name: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.+-]+$")
    description: str = ""
    phases: tuple[Phase, ...] = Field(min_length=1)

    @property
    def duration_days(self) -> float:
        return sum(p.duration_days for p in self.phases)


class Limits(_Strict):
    """Safety limits the protocol must respect (checked when it is loaded and while it runs)."""

    max_iv_dose_mg_per_kg: float = Field(1.0, gt=0, le=10)
    allow_above_ceiling: bool = False
    min_dose_spacing_hours: float = Field(24.0, ge=0, le=24 * 28)
    max_doses: int | None = Field(None, ge=1, le=1000)


class Protocol(_Strict):
    """A treatment protocol (see the module docstring). Day 0 is a ``start_weekday``."""

    name: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9_]+$")
    title: str = Field(min_length=1)
    summary: str = Field(min_length=1, max_length=200, description="One line.")
    description: str = ""
    citations: tuple[str, ...] = Field(min_length=1)
    evidence: Literal[
        "clinical trial", "clinical practice", "synthesised", "preclinical hypothesis"
    ]
    duration_days: float = Field(gt=0, le=3650, description="Observation time, days.")
    start_weekday: Weekday = "mon"
    endpoints: dict[str, EndpointDefinition] = Field(default_factory=dict)
    limits: Annotated[Limits, Field(default_factory=Limits)]
    arms: tuple[Arm, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _cross_checks(self) -> Protocol:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise KetadurInputError("arms", "arm names must be unique", names)
        for i, arm in enumerate(self.arms):
            at = f"arms[{i}]"
            if arm.duration_days > self.duration_days + _EPS_DAYS:
                raise KetadurInputError(
                    f"{at}.phases",
                    f"phases last {arm.duration_days:g} days, longer than duration_days",
                    self.duration_days,
                )
            for j, phase in enumerate(arm.phases):
                self._check_phase(phase, f"{at}.phases[{j}]", first=j == 0)
        # Dose spacing and counts need the expanded schedule (weekday patterns, anchors).
        from ketadur.protocols.schedule import check_planned_doses

        check_planned_doses(self)
        return self

    def _check_phase(self, phase: Phase, at: str, *, first: bool) -> None:
        req = phase.entry.require
        if req is not None:
            if first:
                raise KetadurInputError(
                    f"{at}.entry.require", "an entry criterion needs a preceding phase", req
                )
            self._check_endpoint(req, f"{at}.entry.require")
        for k, rule in enumerate(phase.rules):
            if isinstance(rule, BoosterRule | StopRule):
                self._check_endpoint(rule.on, f"{at}.rules[{k}].on")
            if isinstance(rule, BoosterRule):
                self._check_ceiling(rule.dose, f"{at}.rules[{k}].dose")
            if isinstance(rule, IntervalRule):
                if rule.drug >= len(phase.drugs) or not phase.drugs[rule.drug].is_ketamine:
                    raise KetadurInputError(
                        f"{at}.rules[{k}].drug",
                        "must index a ketamine regimen of this phase",
                        rule.drug,
                    )
                if phase.drugs[rule.drug].schedule.every_days is None:
                    raise KetadurInputError(
                        f"{at}.drugs[{rule.drug}].schedule",
                        "an adjust_interval rule needs an every_days schedule",
                        "",
                    )
        for k, drug in enumerate(phase.drugs):
            if drug.is_ketamine:
                self._check_ceiling(drug.dose_spec(), f"{at}.drugs[{k}]")
            elif drug.anchor == "first_infusion" and not phase.ketamine_regimens:
                raise KetadurInputError(
                    f"{at}.drugs[{k}].anchor", "the phase has no ketamine infusion", drug.anchor
                )
        for k, plan in enumerate(phase.therapy):
            if plan.anchor == "first_infusion" and not phase.ketamine_regimens:
                raise KetadurInputError(
                    f"{at}.therapy[{k}].anchor", "the phase has no ketamine dose", plan.anchor
                )
        for k, plan in enumerate(phase.assessments):
            if plan.anchor != "phase" and not phase.ketamine_regimens:
                raise KetadurInputError(
                    f"{at}.assessments[{k}].anchor", "the phase has no ketamine dose", plan.anchor
                )

    def _check_endpoint(self, name: str, at: str) -> None:
        if name not in self.endpoints:
            defined = ", ".join(sorted(self.endpoints)) or "none"
            raise KetadurInputError(at, f"unknown endpoint (defined: {defined})", name)

    def _check_ceiling(self, dose: DoseSpec, at: str) -> None:
        if dose.route != "iv" or self.limits.allow_above_ceiling:
            return
        ceiling = self.limits.max_iv_dose_mg_per_kg
        if dose.dose_mg_per_kg is not None and dose.dose_mg_per_kg > ceiling:
            raise KetadurInputError(
                f"{at}.dose_mg_per_kg",
                f"above the IV ceiling of {ceiling:g} mg/kg per infusion "
                "(set limits.allow_above_ceiling: true to allow)",
                dose.dose_mg_per_kg,
            )

    def arm(self, name: str | None = None) -> Arm:
        """The arm called ``name`` (the first arm if None)."""
        if name is None:
            return self.arms[0]
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KetadurInputError(
            "arm", f"no such arm (arms: {', '.join(a.name for a in self.arms)})", name
        )


def phase_starts(arm: Arm) -> list[float]:
    """Start day of each phase of ``arm``."""
    return [0.0, *itertools.accumulate(p.duration_days for p in arm.phases)][:-1]
