"""A patient: covariates and the parameter set that together define one simulated person.

Covariates are the things a clinician records (weight, age, genotype, baseline MADRS); parameters
are the model's physiology (:mod:`ketadur.model.parameters`). The typical patient is the registry
defaults with the covariates below.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ketadur.model.parameters import ParameterSet

Genotype = Literal["val/val", "val/met", "met/met"]


class LifeEvent(BaseModel):
    """A stressful life event: situational depressive load (MADRS points) that then resolves."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    day: float = Field(ge=0, description="Time of the event, days from the start.")
    madrs_points: float = Field(gt=0, le=30, description="Depressive load added, MADRS points.")


class Patient(BaseModel):
    """One patient's covariates and model parameters (frozen).

    Defaults describe a typical adult with treatment-resistant depression. They are modelling
    choices (marked ``assumed``), to be replaced by sourced population distributions.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    subject_id: str = Field("typical", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    weight_kg: float = Field(70.0, ge=30, le=250, description="Actual body weight (kg).")
    age_years: float = Field(45.0, ge=18, le=90, description="Age (years).")
    bdnf_genotype: Genotype = Field("val/val", description="BDNF Val66Met genotype.")
    baseline_madrs: float = Field(32.0, ge=0, le=60, description="MADRS at day 0 (points).")
    situational_madrs: float = Field(
        0.0, ge=0, le=60, description="Part of baseline MADRS due to a situational episode."
    )
    situational_half_life_days: float = Field(
        30.0, gt=0, le=3650, description="Half-life with which situational depression resolves."
    )
    life_events: tuple[LifeEvent, ...] = ()
    chronic_stress: float = Field(0.3, ge=0, le=1, description="Chronic stress index (0-1).")
    tolerance_propensity: float = Field(
        1.0, ge=0, le=10, description="Multiplier on tolerance build-up (1 = typical)."
    )
    trkb_deleted: bool = Field(False, description="Preclinical switch: TrkB deleted.")
    background_antidepressant: bool = Field(False, description="On a stable oral antidepressant.")
    habitual_exercise_sessions_per_week: float = Field(0.0, ge=0, le=14)
    habitual_sleep_h_per_night: float = Field(7.0, ge=2, le=14)
    baseline_sbp_mmhg: float = Field(125.0, ge=70, le=220)
    params: ParameterSet = Field(default_factory=ParameterSet.typical)

    @field_validator("params", mode="before")
    @classmethod
    def _coerce_params(cls, value: object) -> object:
        if isinstance(value, dict):
            return ParameterSet(value)
        return value

    @model_validator(mode="after")
    def _situational_within_baseline(self) -> Patient:
        if self.situational_madrs > self.baseline_madrs:
            raise ValueError("situational_madrs must not exceed baseline_madrs")
        return self

    @property
    def met_alleles(self) -> int:
        """Number of BDNF Met alleles (0, 1 or 2)."""
        return self.bdnf_genotype.count("met")


TYPICAL_PATIENT = Patient()
"""The typical patient: registry defaults and default covariates."""
