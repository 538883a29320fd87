"""The evidence library: published results and how ketadur reproduces each one.

Two package data files, kept apart so that each can be reviewed on its own:

- ``published.yaml``: the published numbers exactly as collected (study, citation, design, arm,
  endpoint, the study's own definition, time point, value, unit, n, uncertainty, provenance);
- ``targets.yaml``: for each entry, ketadur's side: whether it is reproduced (and if not, why),
  the protocol-library design and arm(s) that reproduce it, the quantity computed on the simulated
  trial with the study's own endpoint definition, the published size of the trial, and the
  published uncertainty in numbers (confidence interval, SD, or the n of a binomial proportion).

:func:`load_targets` joins them into validated :class:`Target` objects.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ketadur.errors import KetadurInputError
from ketadur.protocols.schema import EndpointDefinition
from ketadur.trials.endpoints import wilson_interval


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PublishedEntry(BaseModel):
    """One published number as collected (fields of ``published.yaml``)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str
    study: str
    year: int | None = None
    doi_or_pmid: str | None = None
    url: str | None = None
    design: str
    arm: str | None = None
    endpoint: str
    definition: str | None = None
    timepoint: str | None = None
    value: float | str | None = None
    unit: str | None = None
    n: str | int | None = None
    ci_or_sd: str | None = None
    provenance: str
    notes: str | None = None


class Among(_Strict):
    """Which patients a quantity is computed on: everyone (default), the responders or remitters
    (``endpoint``) at ``day`` or in a window of days (``met: false``: those rated in the window
    who did not meet it, e.g. the non-responders), or the entrants of protocol phase ``phase``."""

    endpoint: str | None = None
    day: float | None = Field(None, ge=0)
    window_days: tuple[float, float] | None = None
    met: bool = True
    phase: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Among:
        if self.endpoint is not None and (self.day is None) == (self.window_days is None):
            raise ValueError("an endpoint selection needs exactly one of day or window_days")
        return self


class Quantity(_Strict):
    """What is computed on each simulated trial.

    - ``rate``: fraction (in %) meeting ``endpoint`` at the visit on ``day``, or at any visit in
      ``window_days`` (e.g. response "in the first two weeks");
    - ``madrs_mean``: mean MADRS at ``day`` (points);
    - ``madrs_change``: mean MADRS change from baseline at ``day`` (points, negative = better);
    - ``relapse_fraction``: fraction (in %) with ``endpoint`` (relapse) among ``among`` by
      ``day`` days after ``from_day`` (Kaplan-Meier), or, without ``day``, by the end of follow-up
      (crude proportion, as randomised-withdrawal trials report it);
    - ``median_time``: Kaplan-Meier median days from ``from_day`` to ``endpoint`` among
      ``among`` (``unit_days`` converts, e.g. 7 for weeks);
    - ``hazard_ratio``: Cox hazard ratio of ``endpoint`` for ``arms[0]`` vs ``reference_arm``;
    - ``madrs_change_difference``: mean MADRS change at ``day`` in ``arms`` minus that in
      ``reference_arm`` (points; negative favours ``arms``);
    - ``odds_ratio``: odds of meeting ``endpoint`` at the visit on ``day`` in ``arms`` over the
      odds in ``reference_arm`` (0.5 added to every cell when one is empty);
    - ``cohens_d``: standardised difference in MADRS at ``day`` between ``reference_arm`` and
      ``arms[0]`` (positive favours ``arms[0]``);
    - ``output_mean`` / ``output_change``: mean of model output ``output`` at ``minutes`` after
      the first dose (change: minus its value at time 0), without observation noise;
    - ``output_peak``: mean of each subject's highest ``output`` in the first ``minutes`` after
      the first dose, sampled every minute (a Cmax), without observation noise;
    - ``observed_smd_change``: standardised mean change of the measure that reads ``output``
      (e.g. plasma BDNF), as observed at the visits, from the first visit to the one ``minutes``
      after the first dose: difference of the means over the pooled SD of the two visits;
    - ``duration_ratio``: how many times longer ``endpoint`` lasts in ``arms`` than in
      ``reference_arm`` (a relative duration, as preclinical studies report one): among the
      subjects whose model MADRS (no observation noise) meets the endpoint's thresholds at
      ``day``, the days from ``day`` to the first whole day on which it no longer does (at most
      ``until_day``): their median in ``arms`` over that in ``reference_arm`` (the median, so
      that subjects who never lose it, censored, weigh no more than any long one).

    ``arms`` are pooled (e.g. a pooled analysis of three doses); ``from_day`` may be ``"phase"``
    (each subject's entry into ``among.phase``).
    """

    kind: Literal[
        "rate",
        "madrs_mean",
        "madrs_change",
        "madrs_change_difference",
        "relapse_fraction",
        "median_time",
        "hazard_ratio",
        "odds_ratio",
        "cohens_d",
        "output_mean",
        "output_change",
        "output_peak",
        "observed_smd_change",
        "duration_ratio",
    ]
    arms: tuple[str, ...] = Field(min_length=1)
    endpoint: str | None = None
    day: float | None = Field(None, ge=0)
    window_days: tuple[float, float] | None = None
    among: Among = Among()
    from_day: float | Literal["phase"] = 0.0
    reference_arm: str | None = None
    output: str | None = None
    minutes: float | None = Field(None, ge=0)
    until_day: float | None = Field(None, gt=0)
    unit_days: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> Quantity:
        needs = {
            "rate": ("endpoint",),
            "madrs_mean": ("day",),
            "madrs_change": ("day",),
            "madrs_change_difference": ("day", "reference_arm"),
            "relapse_fraction": ("endpoint",),
            "median_time": ("endpoint",),
            "hazard_ratio": ("endpoint", "reference_arm"),
            "odds_ratio": ("endpoint", "day", "reference_arm"),
            "cohens_d": ("day", "reference_arm"),
            "output_mean": ("output", "minutes"),
            "output_change": ("output", "minutes"),
            "output_peak": ("output", "minutes"),
            "observed_smd_change": ("output", "minutes"),
            "duration_ratio": ("endpoint", "day", "reference_arm", "until_day"),
        }[self.kind]
        for name in needs:
            if getattr(self, name) is None:
                raise ValueError(f"a {self.kind} quantity needs '{name}'")
        if self.kind == "rate" and (self.day is None) == (self.window_days is None):
            raise ValueError("a rate needs exactly one of day or window_days")
        if self.kind == "duration_ratio" and not self.day < self.until_day:
            raise ValueError("a duration_ratio needs day < until_day")
        if self.from_day == "phase" and self.among.phase is None:
            raise ValueError("from_day 'phase' needs among.phase")
        return self


class Uncertainty(_Strict):
    """The published uncertainty in numbers: a 95 % confidence interval (``ci95``), or an SD
    with the n it was measured on, or only the n of a proportion (binomial, Wilson interval), or
    the standard error of the log of a ratio or time (``log_se``, derived where the study states
    none; the target's note says how)."""

    ci95: tuple[float | None, float | None] | None = None
    sd: float | None = Field(None, gt=0)
    n: int | None = Field(None, ge=1)
    log_se: float | None = Field(None, gt=0)

    def interval(self, value: float, unit: str) -> tuple[float | None, float | None]:
        """The 95 % interval around the published ``value`` (None where not stated)."""
        if self.ci95 is not None:
            return self.ci95
        if self.log_se is not None:
            half = 1.959964 * self.log_se
            return value * float(np.exp(-half)), value * float(np.exp(half))
        if self.sd is not None and self.n is not None:
            half = 1.959964 * self.sd / np.sqrt(self.n)
            return value - half, value + half
        if self.n is not None and unit == "%":
            low, high = wilson_interval(np.array([value / 100.0 * self.n]), np.array([self.n]))
            return float(low[0]) * 100.0, float(high[0]) * 100.0
        return None, None


class Reproduced(_Strict):
    """How ketadur reproduces one published entry."""

    id: str
    role: Literal["calibration", "validation"] = "calibration"
    protocol: str
    population: str = "trd-adults"
    quantity: Quantity
    value: float = Field(description="The published value in ketadur's unit (sign included).")
    unit: str
    trial_patients: int = Field(
        ge=1,
        le=100_000,
        description="Patients per arm as published; for a quantity among the entrants of a phase, "
        "the number of entrants.",
    )
    uncertainty: Uncertainty = Uncertainty()
    endpoints: dict[str, EndpointDefinition] = Field(
        default_factory=dict, description="The study's own definitions, over the protocol's."
    )
    note: str = ""


class NotReproduced(_Strict):
    """A published entry ketadur does not reproduce yet, with the reason."""

    id: str
    reason: str


Mapping = Annotated[Reproduced | NotReproduced, Field(union_mode="left_to_right")]


class Target(BaseModel):
    """A published entry joined with how ketadur reproduces it (``how`` None: not reproduced)."""

    model_config = ConfigDict(frozen=True)

    published: PublishedEntry
    how: Reproduced | None
    reason: str = ""

    @property
    def id(self) -> str:
        return self.published.id


class SeedRow(_Strict):
    """One row of the seeds' Tables 1 and 2, with the targets that carry its numbers."""

    table: Literal[1, 2]
    study: str
    claim: str
    targets: tuple[str, ...] = ()
    note: str = ""


class TargetFile(_Strict):
    targets: list[Mapping]
    seed_claims: list[PublishedEntry] = Field(default_factory=list)
    seed_targets: list[Reproduced] = Field(default_factory=list)
    seed_tables: list[SeedRow]


def _read(name: str) -> dict:
    text = resources.files("ketadur.evidence").joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@cache
def published_entries() -> dict[str, PublishedEntry]:
    """Every entry of ``published.yaml`` by id, then the seeds' own claims."""
    entries = [PublishedEntry(**e) for e in _read("published.yaml")["entries"]]
    return {e.id: e for e in [*entries, *target_file().seed_claims]}


@cache
def target_file() -> TargetFile:
    """``targets.yaml`` validated."""
    try:
        return TargetFile(**_read("targets.yaml"))
    except ValidationError as exc:  # package data: a defect, but say where
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise KetadurInputError(f"targets.yaml: {where}", err["msg"], None) from None


def load_targets(role: str | None = None) -> list[Target]:
    """Every published entry with ketadur's mapping, in ``published.yaml`` order; ``role``
    (``calibration`` / ``validation``) keeps only the reproduced targets of that role."""
    entries = published_entries()
    mapped: dict[str, Reproduced | NotReproduced] = {}
    for m in [*target_file().targets, *target_file().seed_targets]:
        if m.id not in entries:
            raise KetadurInputError("targets.yaml: id", "no such published entry", m.id)
        if m.id in mapped:
            raise KetadurInputError("targets.yaml: id", "mapped twice", m.id)
        mapped[m.id] = m
    out = []
    for key, entry in entries.items():
        m = mapped.get(key)
        if isinstance(m, Reproduced):
            if role is None or m.role == role:
                out.append(Target(published=entry, how=m))
        elif role is None:
            reason = m.reason if m is not None else "not mapped yet"
            out.append(Target(published=entry, how=None, reason=reason))
    return out


def seed_rows() -> list[SeedRow]:
    """The seeds' Tables 1 and 2 as rows pointing at targets."""
    return target_file().seed_tables
