"""Regimens: the doses, therapy sessions, adjunct windows and lifestyle changes given to a patient.

A :class:`Regimen` is the fixed (non-adaptive) list of what is given and when; the protocol language
(issue "Protocols") compiles into it. Times are in days from the start of the simulation.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ketadur.errors import KetadurInputError

Drug = Literal["racemic_ketamine", "esketamine", "placebo", "midazolam"]
PLACEBOS = ("placebo", "midazolam")
"""Administrations without NMDA action: an inert placebo (saline, a placebo spray) and midazolam,
the active placebo of ketamine trials (it sedates, so the blind holds better)."""
Route = Literal["iv", "intranasal", "oral", "im"]
SessionKind = Literal["cbt", "mindfulness", "preparation", "integration"]


class Dose(BaseModel):
    """One administration. IV doses with ``infusion_minutes > 0`` are constant-rate infusions;
    everything else enters as a bolus (a state jump at ``day``). A ``placebo`` (inert) or
    ``midazolam`` (active placebo) carries no dose in the model: it acts through expectancy
    only, the inert placebo less so."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    day: float = Field(ge=0, description="Start time, days.")
    drug: Drug = "racemic_ketamine"
    route: Route = "iv"
    dose_mg_per_kg: float | None = Field(None, gt=0, le=10, description="mg per kg actual weight.")
    dose_mg: float | None = Field(None, gt=0, le=1000, description="Fixed dose, mg.")
    infusion_minutes: float = Field(0.0, ge=0, le=24 * 60, description="Infusion length, min.")

    @model_validator(mode="after")
    def _check(self) -> Dose:
        if self.drug in PLACEBOS:
            if self.dose_mg_per_kg is not None or self.dose_mg is not None:
                raise ValueError("a placebo has no dose in the model")
            return self
        check_dose_fields(self)
        return self

    def amount_mg(self, weight_kg: float) -> float:
        """Total dose in mg for a patient of ``weight_kg`` (actual body weight); 0 for placebos."""
        if self.drug in PLACEBOS:
            return 0.0
        if self.dose_mg is not None:
            return self.dose_mg
        assert self.dose_mg_per_kg is not None
        return self.dose_mg_per_kg * weight_kg


def check_dose_fields(dose: Any) -> None:
    """Rules every dose description obeys (here and in protocol files): exactly one of
    ``dose_mg_per_kg``/``dose_mg``; infusions only IV, of at least one minute."""
    if (dose.dose_mg_per_kg is None) == (dose.dose_mg is None):
        raise ValueError("give exactly one of dose_mg_per_kg or dose_mg")
    if dose.infusion_minutes > 0 and dose.route != "iv":
        raise KetadurInputError(
            "route", "infusion_minutes applies to the iv route only", dose.route
        )
    if 0 < dose.infusion_minutes < 1:
        raise KetadurInputError(
            "infusion_minutes", "must be 0 (bolus) or at least 1 minute", dose.infusion_minutes
        )


class TherapySession(BaseModel):
    """One psychotherapy session (CBT, mindfulness, preparation or integration)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    day: float = Field(ge=0)
    kind: SessionKind = "cbt"


class AdjunctWindow(BaseModel):
    """Exposure to an experimental adjunct between ``start_day`` and ``end_day``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: Literal["dusp6_inhibitor"] = "dusp6_inhibitor"
    start_day: float = Field(ge=0)
    end_day: float = Field(gt=0)

    @model_validator(mode="after")
    def _order(self) -> AdjunctWindow:
        if self.end_day <= self.start_day:
            raise ValueError("end_day must be after start_day")
        return self


class LifestyleChange(BaseModel):
    """From ``start_day`` on, the patient exercises and sleeps as given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_day: float = Field(0.0, ge=0)
    exercise_sessions_per_week: float = Field(ge=0, le=14)
    sleep_h_per_night: float = Field(ge=2, le=14)


class MedicationWindow(BaseModel):
    """A background oral antidepressant from ``start_day`` to ``end_day`` (None: to the end).

    A patient already on one before day 0 is described by ``Patient.background_antidepressant``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: Literal["oral_antidepressant"] = "oral_antidepressant"
    start_day: float = Field(0.0, ge=0)
    end_day: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _order(self) -> MedicationWindow:
        if self.end_day is not None and self.end_day <= self.start_day:
            raise ValueError("end_day must be after start_day")
        return self


class Regimen(BaseModel):
    """What a patient is given: doses, sessions, adjunct windows, lifestyle changes and background
    medication (frozen)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field("regimen", min_length=1)
    doses: tuple[Dose, ...] = ()
    sessions: tuple[TherapySession, ...] = ()
    adjuncts: tuple[AdjunctWindow, ...] = ()
    lifestyle: tuple[LifestyleChange, ...] = ()
    medications: tuple[MedicationWindow, ...] = ()

    @model_validator(mode="after")
    def _no_overlapping_infusions(self) -> Regimen:
        spans = sorted(
            (d.day, d.day + d.infusion_minutes / 1440.0) for d in self.doses if d.route == "iv"
        )
        for (_, end), (start, _) in itertools.pairwise(spans):
            if start < end - 1e-12:
                raise ValueError("IV infusions overlap in time")
        return self

    def with_sessions(self, sessions: Iterable[TherapySession], name: str | None = None) -> Regimen:
        """A new regimen with ``sessions`` added."""
        return self.model_copy(
            update={"sessions": (*self.sessions, *sessions), "name": name or self.name}
        )

    def with_adjunct(self, window: AdjunctWindow, name: str | None = None) -> Regimen:
        """A new regimen with an adjunct exposure window added."""
        return self.model_copy(
            update={"adjuncts": (*self.adjuncts, window), "name": name or self.name}
        )

    def with_lifestyle(self, change: LifestyleChange, name: str | None = None) -> Regimen:
        """A new regimen with a lifestyle change added."""
        return self.model_copy(
            update={"lifestyle": (*self.lifestyle, change), "name": name or self.name}
        )

    @property
    def last_dose_day(self) -> float | None:
        """Day of the last ketamine/esketamine dose, or None without doses."""
        return max((d.day for d in self.doses if d.drug not in PLACEBOS), default=None)


# ------------------------------------------------------------------------------------ builders

PROTOCOL1_DOSE_MG_PER_KG = 0.5
"""Seed Protocol 1: racemic ketamine 0.5 mg/kg actual body weight (seed 000, Protocol 1)."""
PROTOCOL1_INFUSION_MIN = 40.0
"""Seed Protocol 1: infused over 40 minutes."""


def iv_infusions(
    days: Sequence[float],
    *,
    dose_mg_per_kg: float = PROTOCOL1_DOSE_MG_PER_KG,
    infusion_minutes: float = PROTOCOL1_INFUSION_MIN,
    name: str | None = None,
) -> Regimen:
    """IV racemic ketamine infusions on ``days`` (seed Protocol 1 dose and length by default)."""
    doses = tuple(
        Dose(day=d, dose_mg_per_kg=dose_mg_per_kg, infusion_minutes=infusion_minutes) for d in days
    )
    return Regimen(name=name or f"{len(doses)} x IV {dose_mg_per_kg} mg/kg", doses=doses)


def single_infusion(**kwargs: float) -> Regimen:
    """Seed Protocol 1: one 0.5 mg/kg infusion over 40 min on day 0."""
    return iv_infusions([0.0], name="single infusion", **kwargs)


INDUCTION_DAYS_THRICE_WEEKLY = (0.0, 2.0, 4.0, 7.0, 9.0, 11.0)
"""Six infusions, Monday-Wednesday-Friday for two weeks (seed Protocol 2 induction)."""


def six_infusions(**kwargs: float) -> Regimen:
    """Seed Protocol 2 induction: six infusions thrice weekly over two weeks."""
    return iv_infusions(INDUCTION_DAYS_THRICE_WEEKLY, name="six infusions", **kwargs)


def weekly_sessions(
    start_day: float, weeks: int, kind: SessionKind = "cbt"
) -> tuple[TherapySession, ...]:
    """One session a week for ``weeks`` weeks from ``start_day``."""
    return tuple(TherapySession(day=start_day + 7.0 * i, kind=kind) for i in range(weeks))
