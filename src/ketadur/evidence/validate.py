"""Validation: each reproduced target's design run with the model and compared with the study.

For each target the row holds the published value with its 95 % interval and source, the model's
median and 90 % predictive interval over replicated trials of the published size, and whether the
published value falls inside that interval. Targets the model does not reproduce yet are listed
with the reason, so the report shows the whole evidence library, agreement and disagreement alike.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ketadur import __version__
from ketadur.errors import KetadurInputError
from ketadur.evidence.phenomena import PHENOMENA, typical_runs
from ketadur.evidence.predict import (
    Design,
    Prediction,
    endpoint_definition,
    per_subject,
    predict,
    simulate_design,
)
from ketadur.evidence.schema import SeedRow, Target, load_targets, seed_rows
from ketadur.model.parameters import ParameterSet
from ketadur.population.typical import calibrated, draw_count
from ketadur.trials import endpoints as ep
from ketadur.trials import survival as sv
from ketadur.trials.observe import TYPICAL_OBSERVATION, ObservationModel

DEFAULT_POOL = 400
"""Virtual patients simulated per design; replicated trials draw from them."""
DEFAULT_REPLICATES = 200
"""Replicated trials per target (the predictive interval's resolution)."""
COURSE_MIN_RATED = 0.2
"""A visit day enters a rate's course when at least this share of the pool was rated then."""
TIME_TO_EVENT = ("relapse_fraction", "median_time", "hazard_ratio")
"""Quantities whose course is a Kaplan-Meier curve."""


@dataclass
class ValidationResult:
    """Rows (one per published entry) and the settings that produced them."""

    rows: list[dict]
    predictions: dict[str, Prediction]
    seed_tables: list[SeedRow]
    seed: int
    pool: int
    replicates: int
    runtime_s: float = 0.0
    provenance: dict = field(default_factory=dict)
    courses: dict[str, dict] = field(default_factory=dict)
    """Per target id, the whole pool's course behind it (:func:`course`), for the report."""
    phenomena: list[dict] = field(default_factory=list)
    """The seed phenomena on the calibrated typical patient (:func:`phenomena_rows`)."""

    def summary(self) -> dict:
        """Counts: targets reproduced, inside the 90 % interval, and their fraction."""
        done = [r for r in self.rows if r["status"] == "reproduced"]
        inside = sum(bool(r["inside_90"]) for r in done)
        return {
            "published_entries": len(self.rows),
            "reproduced": len(done),
            "inside_90": inside,
            "fraction_inside": inside / len(done) if done else None,
            "calibration_targets": sum(r["role"] == "calibration" for r in done),
            "validation_targets": sum(r["role"] == "validation" for r in done),
        }

    def to_json(self) -> dict:
        """The document of ``ketadur validate --json`` (schema in docs/validation.md)."""
        return {
            "seed": self.seed,
            "pool": self.pool,
            "replicates": self.replicates,
            "parameters": self.provenance.get("parameters"),
            "parameter_draws": self.provenance.get("parameter_draws", 0),
            "ketadur_version": __version__,
            "summary": self.summary(),
            "targets": self.rows,
            "seed_tables": [r.model_dump() for r in self.seed_tables],
            "phenomena": self.phenomena,
        }


def phenomena_rows(params: ParameterSet | None = None) -> list[dict]:
    """Each seed phenomenon a calibration weighs (:mod:`ketadur.evidence.phenomena`), measured on
    the typical patient of ``params`` (default: the calibrated one): its claim, the ratio it
    requires, the model's ratio (``None`` when not finite: no reference duration to divide by,
    which is not reached, or a response never lost within the horizon, which is) and whether it
    is reached."""
    runs = typical_runs(ParameterSet.typical() if params is None else params)
    rows = []
    for p in PHENOMENA:
        value = p.measure(runs)
        rows.append({"id": p.id, "claim": p.claim, "required": p.required,
                     "value": float(value) if math.isfinite(value) else None,
                     "reached": bool(value >= p.required)})  # fmt: skip
    return rows


def _row(target: Target, prediction: Prediction | None) -> dict:
    p = target.published
    row = {
        "id": target.id,
        "study": p.study,
        "source": p.doi_or_pmid or p.url or "",
        "provenance": p.provenance,
        "endpoint": p.endpoint,
        "definition": p.definition or "",
        "timepoint": p.timepoint or "",
        "published_value": p.value,
        "unit": p.unit,
    }
    how = target.how
    if how is None or prediction is None:
        return {**row, "status": "not reproduced", "reason": target.reason, "role": None,
                "inside_90": None}  # fmt: skip
    low, high = how.uncertainty.interval(how.value, how.unit)
    inside = (
        prediction.p05 is not None
        and prediction.p95 is not None
        and prediction.p05 <= how.value <= prediction.p95
    )
    return {
        **row,
        "status": "reproduced",
        "role": how.role,
        "protocol": how.protocol,
        "arms": list(how.quantity.arms),
        "quantity": how.quantity.kind,
        "value": how.value,
        "unit": how.unit,
        "published_ci95": [low, high],
        "trial_patients": how.trial_patients,
        "model_median": prediction.median,
        "model_p05": prediction.p05,
        "model_p95": prediction.p95,
        "estimable_fraction": prediction.estimable_fraction,
        "inside_90": bool(inside),
        "note": how.note,
    }


def validate(
    *,
    seed: int = 0,
    pool: int = DEFAULT_POOL,
    replicates: int = DEFAULT_REPLICATES,
    only: list[str] | None = None,
    observation: ObservationModel = TYPICAL_OBSERVATION,
    parameter_draws: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> ValidationResult:
    """Run every reproduced target's design (or those in ``only``, ids or protocol names) on
    ``pool`` patients, replicate each trial ``replicates`` times, and compare.

    With ``parameter_draws`` = K > 0, each design is simulated on a pool of ``pool`` patients for
    each of the calibration's first K posterior draws (K times the cost) and replicate ``r`` uses
    draw ``r`` modulo K: the interval then holds parameter uncertainty as well. With 0, the
    calibrated point is used.

    ``progress(design, done, total)`` is called as designs finish."""
    if not (isinstance(parameter_draws, int) and parameter_draws >= 0):
        raise KetadurInputError("parameter_draws", "must be an integer >= 0", parameter_draws)
    if parameter_draws > draw_count():
        raise KetadurInputError(
            "parameter_draws", f"the shipped calibration has {draw_count()} draws", parameter_draws
        )
    start = time.perf_counter()
    targets = load_targets()
    if only:
        wanted = set(only)
        targets = [t for t in targets if t.id in wanted or (t.how and t.how.protocol in wanted)]
    designs: dict[tuple[str, str], list[Target]] = {}
    for t in targets:
        if t.how is not None:
            designs.setdefault((t.how.protocol, t.how.population), []).append(t)
    predictions: dict[str, Prediction] = {}
    courses: dict[str, dict] = {}
    for done, ((protocol, preset), group) in enumerate(designs.items(), start=1):
        arms: list[str] = []
        for t in group:
            q = t.how.quantity
            arms += [a for a in (*q.arms, q.reference_arm) if a and a not in arms]
        per_draw = [
            simulate_design(
                protocol, preset, arms, patients=pool, seed=seed, observation=observation,
                parameters=None if parameter_draws == 0 else calibrated(draw=k), start=k * pool,
            )
            for k in range(max(1, parameter_draws))
        ]  # fmt: skip
        for t in group:
            subjects = pd.concat(
                [per_subject(d, t.how).assign(draw=k) for k, d in enumerate(per_draw)],
                ignore_index=True,
            )
            predictions[t.id] = predict(t, subjects, replicates=replicates, seed=seed)
            courses[t.id] = course(per_draw[0], t, subjects[subjects["draw"] == 0])
        if progress is not None:
            progress(protocol, done, len(designs))
    rows = [_row(t, predictions.get(t.id)) for t in targets]
    return ValidationResult(
        rows=rows,
        predictions=predictions,
        seed_tables=seed_rows(),
        seed=seed,
        pool=pool,
        replicates=replicates,
        runtime_s=time.perf_counter() - start,
        courses={k: v for k, v in courses.items() if v},
        phenomena=phenomena_rows(),
        provenance={
            "observation": observation.model_dump(),
            "ketadur_version": __version__,
            "parameters": calibrated().label,
            "parameter_draws": parameter_draws,
        },
    )


def course(design: Design, target: Target, subjects: pd.DataFrame) -> dict:
    """The whole pool's course behind one target, for the report's per-study figures: for a rate
    at a visit, the rate (%) of its endpoint at every visit day of its arms (``kind: rate``); for
    a time-to-event quantity, each arm's Kaplan-Meier event-free fraction (%) among the selected
    subjects (``kind: event_free``). Empty for other quantities. ``subjects`` is the target's
    per-subject table (:func:`~ketadur.evidence.predict.per_subject`) on ``design``."""
    how = target.how
    q = how.quantity
    if q.kind == "rate" and q.day is not None and q.among.endpoint is None:
        v = ep.visits_met(design.observed, endpoint_definition(design, how, q.endpoint))
        v = v[v["arm"].isin(q.arms)]
        day = v["t_days"].round(3)
        per_day = v.groupby(day)["met"].agg(["mean", "size"])
        pool = v["subject_id"].nunique()
        per_day = per_day[per_day["size"] >= COURSE_MIN_RATED * pool]
        points = [[float(d), float(m) * 100.0] for d, m in per_day["mean"].items()]
        return {"kind": "rate", "endpoint": q.endpoint, "arms": list(q.arms), "day": q.day,
                "points": points}  # fmt: skip
    if q.kind in TIME_TO_EVENT:
        tte = subjects[subjects["selected"]].copy()
        tte["event"] = tte["event"].astype(bool)
        if q.kind == "hazard_ratio":
            tte["arm"] = np.where(tte["arm"].isin(q.arms), "+".join(q.arms), tte["arm"])
        else:
            tte["arm"] = "+".join(q.arms)
        curves = {}
        for arm in tte["arm"].unique():
            km = sv.km_table(tte, arm)
            pairs = zip(km["t_days"], km["survival"], strict=True)
            curves[str(arm)] = [[float(t), float(f) * 100.0] for t, f in pairs]
        return {"kind": "event_free", "endpoint": q.endpoint, "quantity": q.kind, "day": q.day,
                "unit_days": q.unit_days, "curves": curves}  # fmt: skip
    return {}
