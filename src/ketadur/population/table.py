"""Population tables: one row per patient, covariates then model parameters by registry name.

Generated, edited or real tables all enter here: :func:`validate_population` checks columns,
types and ranges (the same limits as :class:`~ketadur.model.patient.Patient` and the parameter
registry) and names the first offending column and subject. Tables are read and written as
Parquet or CSV; writes go to a temporary name and are renamed when complete.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from annotated_types import Ge, Gt, Le, Lt

from ketadur.errors import KetadurInputError
from ketadur.model.parameters import REGISTRY, ParameterSet
from ketadur.model.patient import LifeEvent, Patient

REQUIRED = ("subject_id", "weight_kg", "age_years", "bdnf_genotype", "baseline_madrs")
"""Columns every population table must have; the other covariates and every parameter default to
the typical patient's values when absent."""
OPTIONAL = (
    "situational_madrs",
    "situational_half_life_days",
    "chronic_stress",
    "tolerance_propensity",
    "trkb_deleted",
    "background_antidepressant",
    "habitual_exercise_sessions_per_week",
    "habitual_sleep_h_per_night",
    "baseline_sbp_mmhg",
    "life_events",
)
DESCRIPTORS = ("sex", "failed_trials", "anhedonia_shaps")
"""Recorded covariates the model does not use (kept for stratification)."""
SUFFIXES = (".parquet", ".csv")


def _limits(field: str) -> tuple[float, float, bool, bool]:
    lo, hi, lo_open, hi_open = -np.inf, np.inf, False, False
    for m in Patient.model_fields[field].metadata:
        if isinstance(m, Ge):
            lo = float(m.ge)
        elif isinstance(m, Gt):
            lo, lo_open = float(m.gt), True
        elif isinstance(m, Le):
            hi = float(m.le)
        elif isinstance(m, Lt):
            hi, hi_open = float(m.lt), True
    return lo, hi, lo_open, hi_open


def _bad_row(df: pd.DataFrame, mask: np.ndarray) -> str:
    i = int(np.flatnonzero(mask)[0])
    return str(df["subject_id"].iloc[i])


def _numeric(df: pd.DataFrame, col: str) -> np.ndarray:
    values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        raise KetadurInputError(
            f"population.{col}", f"must be a finite number (subject {_bad_row(df, bad)})"
        )
    return values


def _in_range(
    df: pd.DataFrame,
    col: str,
    lo: float,
    hi: float,
    lo_open: bool = False,
    hi_open: bool = False,
    what: str = "",
) -> np.ndarray:
    """Column ``col`` as floats, or an error naming the first subject outside the interval."""
    values = _numeric(df, col)
    bad = (values <= lo if lo_open else values < lo) | (values >= hi if hi_open else values > hi)
    if bad.any():
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise KetadurInputError(
            f"population.{col}",
            f"must lie in {what}{interval} (subject {_bad_row(df, bad)})",
            float(values[bad][0]),
        )
    return values


def _parse_life_events(text: Any, subject: str) -> list[tuple[float, float]]:
    if text is None or (isinstance(text, float) and np.isnan(text)) or str(text).strip() == "":
        return []
    events = []
    for item in str(text).split(";"):
        try:
            day, points = (float(x) for x in item.split(":"))
            LifeEvent(day=day, madrs_points=points)
        except Exception:
            raise KetadurInputError(
                "population.life_events",
                f"subject {subject}: each event must be 'day:points' with day >= 0 and "
                "0 < points <= 30, separated by ';'",
                item,
            ) from None
        events.append((day, points))
    return sorted(events)


def validate_population(df: pd.DataFrame) -> pd.DataFrame:
    """A checked copy of ``df`` with absent optional columns filled with the typical values."""
    if not isinstance(df, pd.DataFrame) or len(df) == 0:
        raise KetadurInputError("population", "must be a table with at least one row", ...)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise KetadurInputError("population", f"missing required column(s) {missing}", ...)
    out = df.copy()
    ids = out["subject_id"].astype(str)
    if not ids.str.fullmatch(r"[A-Za-z0-9_.-]{1,64}").all():
        bad = ~ids.str.fullmatch(r"[A-Za-z0-9_.-]{1,64}").to_numpy()
        raise KetadurInputError(
            "population.subject_id",
            "must be a pseudonymous id of letters, digits, '_', '.', '-' (1-64 characters)",
            ids[bad].iloc[0],
        )
    if ids.duplicated().any():
        raise KetadurInputError(
            "population.subject_id", "must be unique", ids[ids.duplicated()].iloc[0]
        )
    out["subject_id"] = ids
    typical = Patient()
    for col in REQUIRED[1:] + OPTIONAL:
        if col not in out.columns:
            out[col] = "" if col == "life_events" else getattr(typical, col)
    genotypes = {"val/val", "val/met", "met/met"}
    bad = ~out["bdnf_genotype"].isin(genotypes).to_numpy()
    if bad.any():
        raise KetadurInputError(
            "population.bdnf_genotype",
            f"must be one of {sorted(genotypes)} (subject {_bad_row(out, bad)})",
            out["bdnf_genotype"][bad].iloc[0],
        )
    for col in ("trkb_deleted", "background_antidepressant"):
        values = out[col]
        if values.dtype != bool:
            text = values.astype(str).str.strip().str.lower()
            mapped = text.map(
                {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
            )
            if mapped.isna().any():
                raise KetadurInputError(
                    f"population.{col}",
                    f"must be true or false (subject {_bad_row(out, mapped.isna().to_numpy())})",
                )
            out[col] = mapped.astype(bool)
    for col in REQUIRED[1:] + OPTIONAL:
        if col in ("bdnf_genotype", "trkb_deleted", "background_antidepressant", "life_events"):
            continue
        out[col] = _in_range(out, col, *_limits(col))
    over = out["situational_madrs"].to_numpy() > out["baseline_madrs"].to_numpy()
    if over.any():
        raise KetadurInputError(
            "population.situational_madrs",
            f"must not exceed baseline_madrs (subject {_bad_row(out, over)})",
        )
    for name, p in REGISTRY.items():
        if name not in out.columns:
            out[name] = p.default
            continue
        out[name] = _in_range(out, name, p.lower, p.upper, what="the registry's plausible range ")
    for subject, text in zip(out["subject_id"], out["life_events"], strict=True):
        _parse_life_events(text, subject)
    out["life_events"] = out["life_events"].fillna("").astype(str)
    return out.reset_index(drop=True)


def life_event_arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Life events of a validated table as CSR arrays: pointers (n+1), times (hours), points."""
    times, points, ptr = [], [], [0]
    for subject, text in zip(df["subject_id"], df["life_events"], strict=True):
        events = _parse_life_events(text, subject)
        times.extend(d * 24.0 for d, _ in events)
        points.extend(p for _, p in events)
        ptr.append(len(times))
    return (
        np.array(ptr, dtype=np.int64),
        np.array(times, dtype=float),
        np.array(points, dtype=float),
    )


def patient_of(row: pd.Series) -> Patient:
    """The :class:`Patient` of one validated row."""
    covariates = {c: row[c] for c in REQUIRED + OPTIONAL if c != "life_events"}
    events = [
        LifeEvent(day=d, madrs_points=p)
        for d, p in _parse_life_events(row["life_events"], row["subject_id"])
    ]
    params = ParameterSet({name: float(row[name]) for name in REGISTRY})
    return Patient(**covariates, life_events=tuple(events), params=params)


def check_table_path(path: Path | str, field: str = "out") -> Path:
    """``path`` if it ends in .parquet or .csv and its folder exists and is writable."""
    p = Path(path)
    if p.suffix.lower() not in SUFFIXES:
        raise KetadurInputError(field, f"must end in one of {SUFFIXES}", str(path))
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise KetadurInputError(field, "folder does not exist or is not writable", str(path))
    return p


def temporary_name(path: Path) -> Path:
    """Where ``path`` is written before it is complete (renamed over ``path`` at the end)."""
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


def write_table(df: pd.DataFrame, path: Path | str) -> Path:
    """Write ``df`` to ``path`` (.parquet or .csv) via a temporary name, atomically."""
    p = check_table_path(path)
    tmp = temporary_name(p)
    try:
        if p.suffix.lower() == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
    return p


def read_population(path: Path | str) -> pd.DataFrame:
    """Read and validate a population table (.parquet or .csv)."""
    p = Path(path)
    if p.suffix.lower() not in SUFFIXES:
        raise KetadurInputError("population", f"file must end in one of {SUFFIXES}", str(path))
    if not p.is_file():
        raise KetadurInputError("population", "file not found", str(path))
    try:
        if p.suffix.lower() == ".parquet":
            df = pd.read_parquet(p)
        else:
            df = pd.read_csv(
                p, dtype={"subject_id": str, "life_events": str}, float_precision="round_trip"
            )
    except Exception as exc:  # a corrupt or foreign file
        raise KetadurInputError("population", f"cannot be read: {exc}", str(path)) from None
    return validate_population(df)
