"""The model's prediction of each published target, with its predictive interval.

Each design (protocol and population preset) is simulated once on a pool of virtual patients and
observed as the study was (rater noise, missed visits, dropout). Every target is then reduced to
one row per pooled patient (met the endpoint or not, change from baseline, time to relapse, ...),
and the trial is replicated many times at its published size by drawing that many patients per arm
from the pool. The spread of the replicated results is the predictive interval: it holds the
sampling variability of a trial of that size, patient variability and observation noise.
(Parameter uncertainty enters when the parameter set varies across replicates: see
``docs/validation.md``.)
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ketadur.engine.population import simulate_population
from ketadur.errors import KetadurInputError
from ketadur.evidence.schema import Quantity, Reproduced, Target
from ketadur.population.generate import generate_population
from ketadur.population.typical import PopulationParameters
from ketadur.protocols.io import load_protocol
from ketadur.protocols.schema import EndpointDefinition, Protocol
from ketadur.trials import endpoints as ep
from ketadur.trials import survival as sv
from ketadur.trials.observe import TYPICAL_OBSERVATION, ObservationModel, Observations, observe
from ketadur.trials.run import MEASURES, endpoint_definitions, responders, simulate_truth

OUTPUT_KINDS = ("output_mean", "output_change", "output_peak")
"""Quantities read from model outputs without observation noise."""

VISIT_MATCH_DAYS = 0.01
"""A visit counts as the one at a target's day when within this many days (15 min)."""


@dataclass(frozen=True)
class Design:
    """A simulated design: the protocol, the pool of patients and what was observed."""

    protocol: Protocol
    population: pd.DataFrame
    observed: Observations


@dataclass(frozen=True)
class Prediction:
    """Replicated results of one target (``values``: one per replicate, NaN where the trial
    gave no estimate, e.g. a median not reached) and the summary of their spread."""

    target_id: str
    values: np.ndarray
    median: float | None
    p05: float | None
    p95: float | None
    estimable_fraction: float


def simulate_design(
    protocol_name: str,
    preset: str,
    arms: list[str],
    *,
    patients: int,
    seed: int,
    observation: ObservationModel = TYPICAL_OBSERVATION,
    parameters: PopulationParameters | None = None,
    start: int = 0,
    progress: Callable[[str, int], None] | None = None,
) -> Design:
    """Simulate and observe ``arms`` of a library protocol on virtual patients ``start`` to
    ``start + patients - 1`` (population parameters: ``parameters``, by default the shipped
    calibration's point)."""
    protocol = load_protocol(protocol_name)
    population = generate_population(
        preset, patients, seed=seed, parameters=parameters, start=start
    )
    truth = simulate_truth(
        protocol, population, arms=arms, seed=seed, observation=observation, progress=progress
    )
    ids = list(population["subject_id"])
    observed = observe(
        truth, observation, seed=seed, subject_index={s: i for i, s in enumerate(ids)}
    )
    return Design(protocol, population, observed)


def _definitions(design: Design, how: Reproduced) -> dict[str, EndpointDefinition]:
    return {**endpoint_definitions(design.protocol), **how.endpoints}


def _definition(defs: dict[str, EndpointDefinition], name: str) -> EndpointDefinition:
    if name not in defs:
        raise KetadurInputError("quantity.endpoint", f"not defined (have {sorted(defs)})", name)
    return defs[name]


def endpoint_definition(design: Design, how: Reproduced, name: str) -> EndpointDefinition:
    """The definition of endpoint ``name`` a target uses: the study's own over the protocol's."""
    return _definition(_definitions(design, how), name)


def _at_day(v: pd.DataFrame, day: float) -> pd.DataFrame:
    return v[np.abs(v["t_days"] - day) <= VISIT_MATCH_DAYS]


def _selected(design: Design, q: Quantity, defs: dict) -> pd.DataFrame:
    """(arm, subject_id, from_day) of the subjects a quantity is computed on."""
    obs = design.observed
    a = q.among
    if a.phase is not None:
        ev = obs.events
        rows = ev[(ev["kind"] == "phase") & (ev["drug"] == a.phase)]
        sel = rows[["arm", "subject_id", "t_days"]].rename(columns={"t_days": "entry_day"})
    elif a.endpoint is not None:
        window = a.window_days or (a.day, a.day)
        window = (window[0] - VISIT_MATCH_DAYS, window[1] + VISIT_MATCH_DAYS)
        sel = responders(obs, _definition(defs, a.endpoint), window)[["arm", "subject_id"]]
        if not a.met:
            rated = ep.madrs_visits(obs)
            rated = rated[(rated["t_days"] >= window[0]) & (rated["t_days"] <= window[1])]
            rated = rated[["arm", "subject_id"]].drop_duplicates()
            sel = rated.merge(sel, how="left", indicator=True)
            sel = sel.loc[sel.pop("_merge") == "left_only"]
    else:
        sel = obs.visits[["arm", "subject_id"]].drop_duplicates()
    sel = sel.copy()
    sel["from_day"] = sel["entry_day"] if q.from_day == "phase" else float(q.from_day)
    return sel.drop(columns=["entry_day"], errors="ignore").reset_index(drop=True)


def per_subject(design: Design, how: Reproduced) -> pd.DataFrame:
    """One row per pooled subject of the target's arms: ``arm``, ``subject_id``, ``selected``
    (in the ``among`` set) and the subject's contribution (``value``; or ``event`` and ``t_days``
    for time-to-event quantities)."""
    q = how.quantity
    defs = _definitions(design, how)
    obs = design.observed
    arms = [*q.arms, *([q.reference_arm] if q.reference_arm else [])]
    everyone = obs.visits[obs.visits["arm"].isin(arms)][["arm", "subject_id"]].drop_duplicates()
    sel = _selected(design, q, defs)
    base = everyone.merge(sel, on=["arm", "subject_id"], how="left", indicator=True)
    base["selected"] = base.pop("_merge") == "both"
    if q.kind in ("rate", "odds_ratio"):
        d = _definition(defs, q.endpoint)
        if q.window_days is not None:
            lo, hi = q.window_days
            ever = ep.ever_met(obs, d, (lo - VISIT_MATCH_DAYS, hi + VISIT_MATCH_DAYS))
            value = ever.set_index(["arm", "subject_id"])["met"]
        else:
            v = ep.visits_met(obs, d)
            value = _at_day(v, q.day).groupby(["arm", "subject_id"])["met"].first()
        return _join(base, value.astype(float) * 100.0)
    if q.kind in ("madrs_mean", "madrs_change", "madrs_change_difference", "cohens_d"):
        v = ep.madrs_visits(obs)
        v = _at_day(v, q.day)
        change = q.kind in ("madrs_change", "madrs_change_difference")
        column = v["madrs"] - v["baseline"] if change else v["madrs"]
        value = column.groupby([v["arm"], v["subject_id"]]).first()
        return _join(base, value)
    if q.kind in OUTPUT_KINDS:
        return _join(base, _output_values(design, q))
    if q.kind == "observed_smd_change":
        return _join_before_after(base, _visit_values(design, q))
    if q.kind == "duration_ratio":
        return _join(base, _endpoint_durations(design, q, _definition(defs, q.endpoint)))
    # time to event, from each selected subject's own start day
    d = _definition(defs, q.endpoint)
    parts = []
    chosen = base[base["selected"]]
    for start, group in chosen.groupby("from_day"):
        parts.append(ep.time_to_event(obs, d, from_day=float(start), subjects=group))
    tte = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["arm", "subject_id", "event", "t_days"])
    )
    out = base.merge(tte[["arm", "subject_id", "event", "t_days"]], on=["arm", "subject_id"],
                     how="left")  # fmt: skip
    out["selected"] &= out["t_days"].notna()
    return out


def _visit_values(design: Design, q: Quantity) -> pd.DataFrame:
    """Observed value of the measure reading ``q.output`` at each subject's first visit
    (``before``) and at the visit ``q.minutes`` after day 0 (``after``)."""
    measures = [m for m, o in MEASURES.items() if o == q.output]
    if not measures:
        reason = f"no visit measure reads it ({MEASURES})"
        raise KetadurInputError("quantity.output", reason, q.output)
    v = design.observed.measure(measures[0])
    first = v.sort_values("t_days").groupby(["arm", "subject_id"])["value"].first()
    after = _at_day(v, q.minutes / 1440.0).groupby(["arm", "subject_id"])["value"].first()
    return pd.DataFrame({"before": first, "after": after}).dropna()


def _join_before_after(base: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    out = base.merge(values.reset_index(), on=["arm", "subject_id"], how="left")
    out["value"] = out["after"] - out["before"]
    out["selected"] &= out["value"].notna()
    return out


def _join(base: pd.DataFrame, value: pd.Series) -> pd.DataFrame:
    out = base.merge(value.rename("value").reset_index(), on=["arm", "subject_id"], how="left")
    out["selected"] &= out["value"].notna()
    return out


def _noiseless(design: Design, arm: str, output: str, days: list[float]) -> pd.DataFrame:
    """Model ``output`` (no observation noise) of every pooled subject of ``arm`` at ``days``
    only: one row per subject, one column per day."""
    table = pd.concat(
        simulate_population(
            design.protocol, design.population, arm=arm, days=days[-1],
            outputs=(output,), output_days=days,
        )
    )  # fmt: skip
    return table.pivot(index="subject_id", columns="t_days", values=output)


def _output_values(design: Design, q: Quantity) -> pd.Series:
    """Model output (no observation noise) at ``q.minutes`` after day 0, per subject; for
    ``output_change`` minus its value at day 0, for ``output_peak`` its highest value on a
    one-minute grid up to ``q.minutes``. Only those minutes are simulated."""
    minutes = np.arange(0.0, q.minutes + 1.0) if q.kind == "output_peak" else [0.0, q.minutes]
    days = [round(m / 1440.0, 9) for m in minutes]  # the engine keeps output days to 1e-9
    parts = []
    for arm in q.arms:
        wide = _noiseless(design, arm, q.output, days)
        if q.kind == "output_peak":
            value = wide.max(axis=1)
        elif q.kind == "output_change":
            value = wide.iloc[:, -1] - wide.iloc[:, 0]
        else:
            value = wide.iloc[:, -1]
        parts.append(pd.DataFrame({"arm": arm, "subject_id": wide.index, "value": value.values}))
    return pd.concat(parts).set_index(["arm", "subject_id"])["value"]


def _endpoint_durations(design: Design, q: Quantity, d: EndpointDefinition) -> pd.Series:
    """Per subject of the quantity's arms: days from ``q.day`` until the model's MADRS (no
    observation noise, read at ``q.day`` and every whole day after it) first fails ``d``'s
    thresholds, censored at ``q.until_day``; NaN for a subject who does not meet them at
    ``q.day``. (Thresholds only: runs of assessments need visits, which this reading has none
    of.)"""
    days = list(np.unique([0.0, q.day, *np.arange(np.floor(q.day) + 1.0, q.until_day + 0.5)]))
    first = days.index(q.day)
    parts = []
    for arm in [*q.arms, q.reference_arm]:
        wide = _noiseless(design, arm, "madrs", days)
        v = wide.stack().rename("madrs").reset_index()
        base = v["subject_id"].map(wide.iloc[:, 0])
        v["improvement_percent"] = np.where(base > 0, 100.0 * (base - v["madrs"]) / base, 0.0)
        ok = ep.qualifies(v, d).reshape(wide.shape)[:, first:]
        t = np.asarray(wide.columns, dtype=float)[first:]
        lost = np.where(~ok, t, np.inf).min(axis=1)
        value = np.where(ok[:, 0], np.minimum(lost, q.until_day) - q.day, np.nan)
        parts.append(pd.DataFrame({"arm": arm, "subject_id": wide.index, "value": value}))
    return pd.concat(parts).set_index(["arm", "subject_id"])["value"]


def _replicate_value(q: Quantity, rows: pd.DataFrame) -> float:
    """The target's result on one replicated trial (``rows``: its subjects, selected only)."""
    if q.kind in ("rate", "madrs_mean", "madrs_change", *OUTPUT_KINDS):
        return float(rows["value"].mean()) if len(rows) else np.nan
    if q.kind == "observed_smd_change":
        if len(rows) < 2:
            return np.nan
        pooled = np.sqrt((rows["before"].var() + rows["after"].var()) / 2.0)
        return float(rows["value"].mean() / pooled) if pooled > 0 else np.nan
    if q.kind == "duration_ratio":
        a = rows.loc[rows["arm"].isin(q.arms), "value"]
        b = rows.loc[rows["arm"] == q.reference_arm, "value"]
        ok = len(a) > 0 and len(b) > 0 and b.median() > 0
        return float(a.median() / b.median()) if ok else np.nan
    if q.kind == "madrs_change_difference":
        a = rows.loc[rows["arm"].isin(q.arms), "value"]
        b = rows.loc[rows["arm"] == q.reference_arm, "value"]
        return float(a.mean() - b.mean()) if len(a) and len(b) else np.nan
    if q.kind == "odds_ratio":
        met = rows["value"] > 0
        groups = (rows["arm"].isin(q.arms), rows["arm"] == q.reference_arm)
        cells = np.array([[(met & g).sum(), (~met & g).sum()] for g in groups], dtype=float)
        if cells.sum(axis=1).min() == 0:
            return np.nan
        if (cells == 0).any():  # Haldane-Anscombe correction
            cells += 0.5
        return float(cells[0, 0] / cells[0, 1] / (cells[1, 0] / cells[1, 1]))
    if q.kind == "cohens_d":
        a = rows.loc[rows["arm"].isin(q.arms), "value"].to_numpy()
        b = rows.loc[rows["arm"] == q.reference_arm, "value"].to_numpy()
        if len(a) < 2 or len(b) < 2:
            return np.nan
        pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1))
                         / (len(a) + len(b) - 2))  # fmt: skip
        return float((b.mean() - a.mean()) / pooled) if pooled > 0 else np.nan
    tte = rows.assign(event=rows["event"].astype(bool))
    if q.kind == "hazard_ratio":
        tte = tte.assign(arm=np.where(tte["arm"].isin(q.arms), "treated", "reference"))
        hr = sv.hazard_ratio(tte, "treated", "reference")["hazard_ratio"]
        return np.nan if hr is None else hr
    tte = tte.assign(arm="pooled")
    if q.kind == "median_time":
        m = sv.median_time(tte, "pooled")["median"]
        return np.nan if m is None else m / q.unit_days
    if q.day is None:  # crude proportion by the end of follow-up
        return float(tte["event"].mean()) * 100.0 if len(tte) else np.nan
    f = sv.event_fraction_by(tte, "pooled", q.day)
    return np.nan if f is None else f * 100.0


def predict(target: Target, subjects: pd.DataFrame, *, replicates: int, seed: int) -> Prediction:
    """Replicate the target's trial ``replicates`` times from the per-subject table: each arm
    draws ``trial_patients`` patients from the pool with replacement (the pool stands for the
    population the trial sampled; from the phase entrants when the target is computed among a
    phase's entrants), and the result is computed on those selected. When the table has a
    ``draw`` column (one pool per posterior parameter draw), replicate ``r`` samples the pool of
    draw ``r`` modulo their number, so the spread holds parameter uncertainty too."""
    how = target.how
    assert how is not None
    q = how.quantity
    n = how.trial_patients
    rng = np.random.default_rng([seed, _stable_hash(target.id)])
    draw_from_selected = q.among.phase is not None
    pools = (
        [subjects[subjects["draw"] == k] for k in sorted(subjects["draw"].unique())]
        if "draw" in subjects.columns
        else [subjects]
    )
    arm_groups = []
    for pool in pools:
        groups = []
        for arm in [*q.arms, *([q.reference_arm] if q.reference_arm else [])]:
            g = pool[pool["arm"] == arm]
            groups.append(g[g["selected"]] if draw_from_selected else g)
        arm_groups.append(groups)
    values = np.empty(replicates)
    for r in range(replicates):
        picked = []
        for g in arm_groups[r % len(arm_groups)]:
            idx = rng.integers(0, len(g), size=n) if len(g) else np.array([], dtype=int)
            picked.append(g.iloc[np.sort(idx)])
        rows = pd.concat(picked, ignore_index=True)
        values[r] = _replicate_value(q, rows[rows["selected"]])
    finite = values[np.isfinite(values)]
    q05, q50, q95 = np.quantile(finite, [0.05, 0.5, 0.95]) if len(finite) else (np.nan,) * 3
    return Prediction(
        target_id=target.id,
        values=values,
        median=_num(q50),
        p05=_num(q05),
        p95=_num(q95),
        estimable_fraction=len(finite) / replicates,
    )


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def _stable_hash(text: str) -> int:
    """A per-target stream id that does not depend on Python's hash seed."""
    return zlib.crc32(text.encode("utf-8"))
