"""Drawing virtual patients from a preset: one random stream per patient.

Patient ``i`` of seed ``s`` is drawn from ``numpy.random.default_rng([s, i])`` alone, so a patient
is the same whether the population is drawn whole or in shards, in any process.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from ketadur.errors import KetadurInputError
from ketadur.model.parameters import REGISTRY
from ketadur.population.presets import DEFAULT_PRESET, LogNormal, Preset, TruncNormal, get_preset
from ketadur.population.typical import ODDS_IIV, PopulationParameters, calibrated

HORIZON_DAYS = 3650.0
"""Life events are drawn over ten years, the longest simulation the engines accept."""

MAX_PATIENTS = 10_000_000

_BLOCK_PATIENTS = 10_000
"""Patients turned from Python rows into a table at a time: a row as a dict of Python objects
takes about ten times its share of the table, so 100,000 patients drawn in one block peaked at
930 MiB for a 108 MiB table."""


def _draw(rng: np.random.Generator, d: TruncNormal | LogNormal) -> float:
    if isinstance(d, TruncNormal):
        for _ in range(100):
            x = rng.normal(d.mean, d.sd)
            if d.lower <= x <= d.upper:
                return float(x)
    else:
        sigma = _log_sd(d.cv)
        for _ in range(100):
            x = d.median * np.exp(sigma * rng.standard_normal())
            if d.lower <= x <= d.upper:
                return float(x)
    return float(np.clip(x, d.lower, d.upper))


@functools.cache
def _log_sd(cv: float) -> float:
    """SD of the log of a log-normal variable with coefficient of variation ``cv``."""
    return np.sqrt(np.log1p(cv**2))


def _iiv_matrix(preset: Preset, values: PopulationParameters) -> tuple[list[str], np.ndarray]:
    cv = {**preset.iiv.cv, **values.cv}
    names = list(cv)
    sig = np.array([np.sqrt(np.log1p(cv[n] ** 2)) for n in names])
    corr = np.eye(len(names))
    for (a, b), r in preset.iiv.correlations.items():
        i, j = names.index(a), names.index(b)
        corr[i, j] = corr[j, i] = r
    return names, np.linalg.cholesky(corr * np.outer(sig, sig))


def _patient(
    preset: Preset,
    rng: np.random.Generator,
    names: list[str],
    chol: np.ndarray,
    typical: dict[str, float],
    bounds: list[tuple[str, float, float]],
    life_events: bool,
) -> dict:
    """One patient's row from its own stream ``rng``: covariates, then every model parameter
    (``typical`` values times the IIV factors of ``names``, kept inside ``bounds``). Without
    ``life_events`` the events are drawn (so that the stream goes on the same) but not kept."""
    female = rng.random() < preset.female_fraction
    weight = _draw(rng, preset.weight_kg_female if female else preset.weight_kg_male)
    q = preset.met_allele_frequency
    met = int(rng.random() < q) + int(rng.random() < q)
    baseline = _draw(rng, preset.baseline_madrs)
    situational = 0.0
    if rng.random() < preset.situational_fraction:
        situational = min(baseline, rng.uniform(*preset.situational_madrs))
    n_events = rng.poisson(preset.life_events_per_year * HORIZON_DAYS / 365.25)
    days = np.sort(rng.uniform(0.0, HORIZON_DAYS, n_events))
    points = np.clip(rng.exponential(preset.life_event_mean_points, n_events), 0.5, 30.0)
    row = {
        "sex": "female" if female else "male",
        "age_years": _draw(rng, preset.age_years),
        "weight_kg": weight,
        "bdnf_genotype": ("val/val", "val/met", "met/met")[met],
        "baseline_madrs": baseline,
        "situational_madrs": situational,
        "situational_half_life_days": _draw(rng, preset.situational_half_life_days),
        "failed_trials": 2 + int(rng.poisson(preset.extra_failed_trials_mean)),
        "anhedonia_shaps": _draw(rng, preset.anhedonia_shaps),
        "chronic_stress": float(rng.beta(*preset.chronic_stress_beta)),
        "tolerance_propensity": _draw(rng, preset.tolerance_propensity),
        "background_antidepressant": bool(rng.random() < preset.background_antidepressant_fraction),
        "habitual_exercise_sessions_per_week": float(
            min(14, rng.poisson(preset.exercise_sessions_per_week_mean))
        ),
        "habitual_sleep_h_per_night": _draw(rng, preset.sleep_h_per_night),
        "baseline_sbp_mmhg": _draw(rng, preset.baseline_sbp_mmhg),
        "life_events": (
            ";".join(f"{d:.3f}:{p:.2f}" for d, p in zip(days, points, strict=True))
            if life_events
            else ""
        ),
    }
    factors = np.exp(chol @ rng.standard_normal(len(names))).tolist()
    row.update(typical)
    for name, factor in zip(names, factors, strict=True):
        if name in ODDS_IIV:
            odds = typical[name] / (1.0 - typical[name]) * factor
            row[name] = odds / (1.0 + odds)
        else:
            row[name] = typical[name] * factor
    row["k10_per_min"] *= (weight / 70.0) ** preset.weight_exponent_k10
    for name, lower, upper in bounds:
        row[name] = float(min(max(row[name], lower), upper))  # np.clip's result, 20x faster
    return row


def generate_population(
    preset: str | Preset = DEFAULT_PRESET,
    n_patients: int = 1000,
    seed: int = 0,
    *,
    start: int = 0,
    parameters: PopulationParameters | None = None,
    life_events: bool = True,
) -> pd.DataFrame:
    """Patients ``start`` to ``start + n_patients - 1`` of ``preset`` with ``seed``: one row each,
    covariates then every model parameter under its registry name.

    Typical values, IIV CVs and the preset values a calibration sets (the life events' mean
    size) come from ``parameters``; by default from the calibration shipped with the package
    (:func:`ketadur.population.typical.calibrated`). A patient's random draws do not depend on
    them, so two parameter sets give the same patients (common random numbers).
    ``life_events=False`` leaves the life events out (the column empty); the other columns do
    not change.

    Examples
    --------
    >>> pop = generate_population("trd-adults", 3, seed=1)
    >>> list(pop["subject_id"])
    ['V0000000', 'V0000001', 'V0000002']
    >>> pop.equals(generate_population("trd-adults", 3, seed=1))
    True
    """
    chosen = get_preset(preset) if isinstance(preset, str) else preset
    if not (isinstance(n_patients, int) and 0 < n_patients <= MAX_PATIENTS):
        raise KetadurInputError(
            "patients", f"must be an integer in [1, {MAX_PATIENTS}]", n_patients
        )
    if not (isinstance(seed, int) and seed >= 0):
        raise KetadurInputError("seed", "must be a non-negative integer", seed)
    values = calibrated() if parameters is None else parameters
    if values.preset:
        chosen = chosen.model_copy(update=dict(values.preset))
    names, chol = _iiv_matrix(chosen, values)
    typical = {p.name: p.default for p in REGISTRY.values()} | dict(values.typical)
    bounds = [(n, REGISTRY[n].lower, REGISTRY[n].upper) for n in [*names, "k10_per_min"]]
    blocks = []
    for first in range(start, start + n_patients, _BLOCK_PATIENTS):
        rows = []
        for i in range(first, min(first + _BLOCK_PATIENTS, start + n_patients)):
            row = {"subject_id": f"V{i:07d}"}
            rng = np.random.default_rng([seed, i])
            row.update(_patient(chosen, rng, names, chol, typical, bounds, life_events))
            rows.append(row)
        blocks.append(pd.DataFrame(rows))
    return pd.concat(blocks, ignore_index=True)


def generate_replicates(
    preset: str | Preset, n_patients: int, replicates: int, seed: int = 0
) -> pd.DataFrame:
    """``replicates`` consecutive blocks of ``n_patients`` (one replicate trial each). With more
    than one replicate, block ``r`` takes the shipped calibration's posterior draw ``r``, so the
    spread across replicates holds parameter uncertainty as well as patient sampling; a single
    block takes the calibrated point."""
    if not (isinstance(replicates, int) and replicates >= 1):
        raise KetadurInputError("replicates", "must be a positive integer", replicates)
    if replicates == 1:
        return generate_population(preset, n_patients, seed)
    parts = [
        generate_population(
            preset, n_patients, seed, start=r * n_patients, parameters=calibrated(draw=r)
        )
        for r in range(replicates)
    ]
    return pd.concat(parts, ignore_index=True)
