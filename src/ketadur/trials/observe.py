"""Observations: one schema for simulated and real patients (DESIGN section 2).

An :class:`Observations` holds two tidy tables:

- ``visits``: one row per measurement taken — ``subject_id``, ``arm``, ``t_days``, ``measure``
  (the protocol's measure: ``madrs``, ``plasma_bdnf``, ``plasma_ketamine``), ``value``;
- ``events``: what was given — ``subject_id``, ``arm``, ``t_days``, ``kind`` (``dose``,
  ``session``, ``dropout``, ``phase``), ``drug``, ``route``, ``amount_mg``. A ``phase`` event marks
  the subject's entry into a study phase (e.g. randomisation into maintenance) and names the phase
  in ``drug``; a session names its kind there.

Endpoints and statistics (:mod:`ketadur.trials.endpoints`, :mod:`ketadur.trials.survival`) read only
these tables, so a virtual trial and a real study are analysed by the same code.
:func:`observe` turns model values at the visits into what a study would record: MADRS with rater
noise, rounded to whole points; plasma BDNF with assay noise; plasma ketamine as modelled;
missed visits; dropout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import ndtri

from ketadur.errors import KetadurInputError

VISIT_COLUMNS = ("subject_id", "arm", "t_days", "measure", "value")
EVENT_COLUMNS = ("subject_id", "arm", "t_days", "kind", "drug", "route", "amount_mg")
EVENT_KINDS = ("dose", "session", "dropout", "phase", "booster")


class ObservationModel(BaseModel):
    """How visits are observed. Defaults and their sources:

    - ``madrs_rater_sd_points`` 2.5: derived from the MADRS test-retest ICC of 0.89 with the
      structured interview guide (Williams JBW, Kobak KA. Br J Psychiatry 2008;192:52-58) and a
      between-patient SD of about 7.5 points (assumed): 7.5 * sqrt(1 - 0.89) = 2.5;
    - ``bdnf_assay_cv`` 0.10: inter-assay CV of commercial BDNF ELISAs, about 5-15 %
      (Polacchini A et al. Sci Rep 2015;5:17989);
    - ``bdnf_between_subject_cv`` 0.6: plasma BDNF differs between people for reasons the
      model does not carry (platelets, handling), a log-normal factor fixed per patient; CV from
      the SDs of baseline plasma BDNF in 94 depressed patients (6.2 of 11.0 and 5.5 of 8.0 ng/mL
      in responders and non-responders; PeerJ 2021, PMC8015784);
    - ``missed_visit_probability`` 0.05 and ``dropout_per_week`` 0.01 (about 23 % over 26 weeks):
      assumed, of the order of discontinuation in ketamine maintenance trials; set them to the
      study's own figures. The baseline visit is never missed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    madrs_rater_sd_points: float = Field(2.5, ge=0, le=10)
    bdnf_assay_cv: float = Field(0.10, ge=0, le=1)
    bdnf_between_subject_cv: float = Field(0.6, ge=0, le=3)
    missed_visit_probability: float = Field(0.05, ge=0, lt=1)
    dropout_per_week: float = Field(0.01, ge=0, lt=1)
    round_madrs: bool = True


TYPICAL_OBSERVATION = ObservationModel()
"""The default observation model (sourced or stated defaults above)."""

NOISELESS = ObservationModel(
    madrs_rater_sd_points=0.0,
    bdnf_assay_cv=0.0,
    bdnf_between_subject_cv=0.0,
    missed_visit_probability=0.0,
    dropout_per_week=0.0,
    round_madrs=False,
)
"""Observation without noise, rounding, missed visits or dropout (the model's values)."""


@dataclass(frozen=True)
class Observations:
    """Visits and events of one study (simulated or real); see the module docstring."""

    visits: pd.DataFrame
    events: pd.DataFrame

    def __post_init__(self) -> None:
        check_columns(self.visits, VISIT_COLUMNS, "visits")
        check_columns(self.events, EVENT_COLUMNS, "events")
        bad = ~self.events["kind"].isin(EVENT_KINDS)
        if bad.any():
            raise KetadurInputError(
                "events.kind", f"must be one of {EVENT_KINDS}", self.events["kind"][bad].iloc[0]
            )

    @property
    def arms(self) -> list[str]:
        """Arms in order of first appearance."""
        return list(dict.fromkeys(self.visits["arm"]))

    def arm(self, name: str) -> Observations:
        """The observations of one arm."""
        return Observations(
            self.visits[self.visits["arm"] == name].reset_index(drop=True),
            self.events[self.events["arm"] == name].reset_index(drop=True),
        )

    def measure(self, name: str) -> pd.DataFrame:
        """Visits of one measure: subject_id, arm, t_days, value."""
        v = self.visits[self.visits["measure"] == name]
        return v[["subject_id", "arm", "t_days", "value"]].reset_index(drop=True)


def check_columns(df: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    """Refuse a table that lacks any of ``columns``, naming the first missing one."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KetadurInputError(f"{what}.{missing[0]}", "required column is missing")


def _uniform(seed: int, subject_index: int, stream: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, subject_index, stream]).random(n)


# A patient's random streams: MADRS rater noise and missed MADRS ratings, indexed by the patient's
# MADRS ratings in time order; dropout; noise and missed visits of the other measures.
_MADRS_NOISE, _MADRS_MISSED, _DROPOUT, _OTHER_NOISE, _OTHER_MISSED, _BDNF_SUBJECT = 1, 2, 3, 4, 5, 6


def _normal(u: np.ndarray) -> np.ndarray:
    """Normal deviates from uniforms by inverse CDF (each stream stays a plain uniform sequence).
    ``ndtri`` is what ``scipy.stats.norm.ppf`` computes, without its per-call overhead (the
    ratings of an adaptive trial call this once per visit)."""
    return ndtri(np.clip(u, 1e-12, 1 - 1e-12))


def _rated_madrs(value: np.ndarray, z: np.ndarray, model: ObservationModel) -> np.ndarray:
    rated = value + model.madrs_rater_sd_points * z
    if model.round_madrs:
        rated = np.round(rated)
    return np.clip(rated, 0.0, 60.0)


class Rater:
    """One patient's MADRS ratings as a study records them, one at a time, as they are taken.

    It draws from the very streams :func:`observe` uses (``seed``, the patient's index), so an
    adaptive protocol that decides on these ratings (booster on relapse, entry criteria) sees
    exactly the values, and the same missed visits, that the observation table later holds."""

    def __init__(self, model: ObservationModel, seed: int, subject_index: int) -> None:
        self._model = model
        self._noise = np.random.default_rng([seed, subject_index, _MADRS_NOISE])
        self._missed = np.random.default_rng([seed, subject_index, _MADRS_MISSED])
        self._count = 0

    def rate(self, madrs: float) -> float | None:
        """The recorded rating of a model MADRS of ``madrs`` at the patient's next MADRS visit,
        or None if that visit is missed (the first, baseline, visit never is)."""
        z = _normal(np.array([self._noise.random()]))
        missed = self._missed.random() < self._model.missed_visit_probability
        first = self._count == 0
        self._count += 1
        if missed and not first:
            return None
        return float(_rated_madrs(np.array([madrs]), z, self._model)[0])


def observe(
    truth: Observations,
    model: ObservationModel = TYPICAL_OBSERVATION,
    *,
    seed: int = 0,
    subject_index: dict[str, int] | None = None,
) -> Observations:
    """What a study would record of the model values in ``truth``.

    Each patient draws from its own streams (``seed``, patient index, purpose), so a patient's
    noise, missed visits and dropout do not depend on the other patients, nor on the arm: in a
    comparison the same patient drops out on the same day in every arm (common random numbers).
    ``subject_index`` maps subject ids to those indices (default: order of first appearance).
    """
    visits = truth.visits
    ids = list(dict.fromkeys(visits["subject_id"]))
    index = subject_index or {s: i for i, s in enumerate(ids)}
    # Each patient's visits (per arm, in order of first appearance) sorted by time, then measure
    # name: one stable sort of the whole table instead of a pandas group per patient.
    groups, keys = pd.factorize(pd.MultiIndex.from_frame(visits[["arm", "subject_id"]]))
    measure_rank = pd.factorize(visits["measure"], sort=True)[0]
    t_all = visits["t_days"].to_numpy(dtype=float)
    order = np.lexsort((measure_rank, t_all, groups))
    bounds = np.flatnonzero(np.diff(groups[order])) + 1
    measures = visits["measure"].to_numpy()
    values = visits["value"].to_numpy(dtype=float)
    kept_rows, kept_values, dropouts = [], [], []
    for g, rows in enumerate(np.split(order, bounds) if len(order) else []):
        arm, subject = keys[g]
        k = index[subject]
        n = len(rows)
        value = values[rows].copy()
        is_madrs = measures[rows] == "madrs"
        is_bdnf = measures[rows] == "plasma_bdnf"
        n_madrs = int(is_madrs.sum())
        value[is_madrs] = _rated_madrs(
            value[is_madrs], _normal(_uniform(seed, k, _MADRS_NOISE, n_madrs)), model
        )
        z_other = _normal(_uniform(seed, k, _OTHER_NOISE, n - n_madrs))
        if is_bdnf.any():
            z_subject = _normal(_uniform(seed, k, _BDNF_SUBJECT, 1))
            cvs = (model.bdnf_assay_cv, model.bdnf_between_subject_cv)
            for cv, z_cv in zip(cvs, (z_other[is_bdnf[~is_madrs]], z_subject), strict=True):
                sigma = np.sqrt(np.log1p(cv * cv))
                value[is_bdnf] = value[is_bdnf] * np.exp(sigma * z_cv - 0.5 * sigma * sigma)
        t = t_all[rows]
        u = np.empty(n)
        u[is_madrs] = _uniform(seed, k, _MADRS_MISSED, n_madrs)
        u[~is_madrs] = _uniform(seed, k, _OTHER_MISSED, n - n_madrs)
        kept = u >= model.missed_visit_probability
        kept |= t == t.min()  # the baseline visit is never missed
        if model.dropout_per_week > 0:
            rate_per_day = -np.log1p(-model.dropout_per_week) / 7.0
            t_drop = -np.log1p(-_uniform(seed, k, _DROPOUT, 1)[0]) / rate_per_day
            if t_drop < t.max():
                kept &= t <= t_drop
                dropouts.append((subject, arm, float(t_drop)))
        kept_rows.append(rows[kept])
        kept_values.append(value[kept])
    events = truth.events
    if dropouts:
        drop = pd.DataFrame(dropouts, columns=["subject_id", "arm", "t_days"])
        last = drop.set_index(["arm", "subject_id"])["t_days"]
        key = pd.MultiIndex.from_frame(events[["arm", "subject_id"]])
        after = last.reindex(key).fillna(np.inf).to_numpy()
        events = events[events["t_days"].to_numpy() <= after]
        drop = drop.assign(kind="dropout", drug="", route="", amount_mg=0.0)
        drop = drop[list(EVENT_COLUMNS)]
        events = pd.concat([events, drop], ignore_index=True) if len(events) else drop
    if kept_rows:
        visits_out = visits.iloc[np.concatenate(kept_rows)][list(VISIT_COLUMNS)]
        visits_out = visits_out.reset_index(drop=True)
        visits_out["value"] = np.concatenate(kept_values)
    else:
        visits_out = pd.DataFrame(columns=list(VISIT_COLUMNS))
    return Observations(visits_out, events.reset_index(drop=True))
