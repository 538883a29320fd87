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
"""Patients turned from Python objects into a table at a time: a patient's draws as Python
objects take several times their share of the table (when each was a dict, 100,000 patients
drawn in one block peaked at 930 MiB for a 108 MiB table)."""


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


_COVARIATES = (
    "sex",
    "age_years",
    "weight_kg",
    "bdnf_genotype",
    "baseline_madrs",
    "situational_madrs",
    "situational_half_life_days",
    "failed_trials",
    "anhedonia_shaps",
    "chronic_stress",
    "tolerance_propensity",
    "background_antidepressant",
    "habitual_exercise_sessions_per_week",
    "habitual_sleep_h_per_night",
    "baseline_sbp_mmhg",
    "life_events",
)
"""The covariate columns of a drawn population, in table order (the model parameters follow)."""


def _patient(
    preset: Preset, rng: np.random.Generator, n_iiv: int, chol: np.ndarray, life_events: bool
) -> tuple[tuple, np.ndarray, float]:
    """One patient's draws from its own stream ``rng``: the covariates (:data:`_COVARIATES`),
    the IIV factors of the ``n_iiv`` varying parameters, and the weight's factor on k10. Without
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
    days = rng.uniform(0.0, HORIZON_DAYS, n_events)
    points = rng.exponential(preset.life_event_mean_points, n_events)
    events = ""
    if life_events:
        days, points = np.sort(days), np.clip(points, 0.5, 30.0)
        events = ";".join(f"{d:.3f}:{p:.2f}" for d, p in zip(days, points, strict=True))
    covariates = (
        "female" if female else "male",
        _draw(rng, preset.age_years),
        weight,
        ("val/val", "val/met", "met/met")[met],
        baseline,
        situational,
        _draw(rng, preset.situational_half_life_days),
        2 + int(rng.poisson(preset.extra_failed_trials_mean)),
        _draw(rng, preset.anhedonia_shaps),
        float(rng.beta(*preset.chronic_stress_beta)),
        _draw(rng, preset.tolerance_propensity),
        bool(rng.random() < preset.background_antidepressant_fraction),
        float(min(14, rng.poisson(preset.exercise_sessions_per_week_mean))),
        _draw(rng, preset.sleep_h_per_night),
        _draw(rng, preset.baseline_sbp_mmhg),
        events,
    )
    factors = np.exp(chol @ rng.standard_normal(n_iiv))
    return covariates, factors, (weight / 70.0) ** preset.weight_exponent_k10


def _block(
    preset: Preset,
    seed: int,
    first: int,
    stop: int,
    names: list[str],
    chol: np.ndarray,
    typical: dict[str, float],
    life_events: bool,
) -> pd.DataFrame:
    """Patients ``first .. stop - 1`` as a table: each patient's draws from its own stream, then
    the parameters of all of them at once (typical values times the IIV factors, the weight's
    effect on k10, kept inside the registry's ranges), by the same operations in the same order
    as one patient at a time would use, so with the same results."""
    draws = [
        _patient(preset, np.random.default_rng([seed, i]), len(names), chol, life_events)
        for i in range(first, stop)
    ]
    columns: dict[str, object] = {"subject_id": [f"V{i:07d}" for i in range(first, stop)]}
    for name, values in zip(_COVARIATES, zip(*(d[0] for d in draws), strict=True), strict=True):
        columns[name] = list(values)
    n = stop - first
    factors = np.array([d[1] for d in draws]).reshape(n, len(names))
    k10_weight = np.array([d[2] for d in draws])
    params = {name: [value] * n for name, value in typical.items()}
    for j, name in enumerate(names):
        t = typical[name]
        if name in ODDS_IIV:
            odds = t / (1.0 - t) * factors[:, j]
            params[name] = odds / (1.0 + odds)
        else:
            params[name] = t * factors[:, j]
    params["k10_per_min"] = np.asarray(params["k10_per_min"], dtype=float) * k10_weight
    for name in [*names, "k10_per_min"]:
        spec = REGISTRY[name]
        params[name] = np.minimum(np.maximum(params[name], spec.lower), spec.upper)
    return pd.DataFrame(columns | params)


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
    blocks = [
        _block(chosen, seed, first, min(first + _BLOCK_PATIENTS, start + n_patients), names,
               chol, typical, life_events)
        for first in range(start, start + n_patients, _BLOCK_PATIENTS)
    ]  # fmt: skip
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
