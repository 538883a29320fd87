"""Endpoints on MADRS visits, each parameterised exactly as a trial defines it.

Everything here reads an :class:`~ketadur.trials.observe.Observations` (simulated or real) and a
:class:`~ketadur.protocols.schema.EndpointDefinition`: a visit *qualifies* when every threshold of
the definition holds (improvement relative to the subject's baseline, the first MADRS visit); the
endpoint is *met* at a visit when at least ``at_least`` of the last ``of_last`` visits qualify, and,
if ``gap_days`` is given, consecutive visits of that run lie within its range (e.g. relapse as MADRS
>= 22 on two consecutive visits 5-15 days apart).

Rates count the subjects observed at a visit (observed cases); the number observed is reported with
every rate. Relapse is seen only at visits, so :func:`time_to_event` returns both the visit time and
the interval (last visit without the event, first visit with it] for interval-censored analysis;
subjects without the event are right-censored at their last visit (dropout or end of follow-up).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ketadur.protocols.schema import EndpointDefinition
from ketadur.regimen import PLACEBOS
from ketadur.trials.observe import Observations


def madrs_visits(obs: Observations) -> pd.DataFrame:
    """MADRS visits with each subject's baseline and improvement (%): arm, subject_id, t_days,
    madrs, baseline, improvement_percent; sorted by arm, subject and time."""
    v = obs.measure("madrs").rename(columns={"value": "madrs"})
    v = v.sort_values(["arm", "subject_id", "t_days"], kind="stable").reset_index(drop=True)
    first = v.groupby(["arm", "subject_id"], sort=False)["madrs"].transform("first")
    v["baseline"] = first
    with np.errstate(divide="ignore", invalid="ignore"):
        v["improvement_percent"] = np.where(first > 0, 100.0 * (first - v["madrs"]) / first, 0.0)
    return v


def qualifies(v: pd.DataFrame, d: EndpointDefinition) -> np.ndarray:
    """Whether each visit of :func:`madrs_visits` meets every threshold of ``d``."""
    m, imp = v["madrs"].to_numpy(), v["improvement_percent"].to_numpy()
    ok = np.full(len(v), d.has_thresholds, dtype=bool)
    if d.madrs_at_most is not None:
        ok &= m <= d.madrs_at_most
    if d.madrs_at_least is not None:
        ok &= m >= d.madrs_at_least
    if d.improvement_percent_at_least is not None:
        ok &= imp >= d.improvement_percent_at_least
    if d.improvement_percent_below is not None:
        ok &= imp < d.improvement_percent_below
    return ok


def met(v: pd.DataFrame, d: EndpointDefinition, *, from_day: float = -np.inf) -> np.ndarray:
    """Whether the endpoint is met at each visit (runs counted over visits from ``from_day``)."""
    q = qualifies(v, d)
    out = np.zeros(len(v), dtype=bool)
    t_all = v["t_days"].to_numpy()
    for _, idx in v.groupby(["arm", "subject_id"], sort=False).indices.items():
        idx = idx[t_all[idx] >= from_day]
        t, qi = t_all[idx], q[idx]
        for j in range(len(idx)):
            lo = max(0, j - d.of_last + 1)
            window = qi[lo : j + 1]
            if not window[-1] or window.sum() < d.at_least or len(window) < d.at_least:
                continue
            if d.gap_days is not None:
                gaps = np.diff(t[lo : j + 1])
                if not np.all((gaps >= d.gap_days[0]) & (gaps <= d.gap_days[1])):
                    continue
            out[idx[j]] = True
    return out


def visits_met(obs: Observations, d: EndpointDefinition) -> pd.DataFrame:
    """:func:`madrs_visits` with a ``met`` column: whether ``d`` is met at each visit."""
    v = madrs_visits(obs)
    v["met"] = met(v, d)
    return v


def wilson_interval(k: np.ndarray, n: np.ndarray, z: float = 1.959964) -> tuple[np.ndarray, ...]:
    """Wilson score interval for k successes of n (Wilson EB. J Am Stat Assoc 1927;22:209-212);
    95 % by default. NaN where n = 0."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def rate_by_visit(
    obs: Observations,
    d: EndpointDefinition,
    days: list[float],
    *,
    subjects: pd.DataFrame | None = None,
    tolerance_days: float = 0.5,
) -> pd.DataFrame:
    """Per arm and requested day: subjects observed at a visit within ``tolerance_days`` of it, how
    many met ``d`` there, the rate and its Wilson 95 % CI. ``subjects`` (arm, subject_id)
    restricts the denominator (e.g. responders)."""
    v = madrs_visits(obs)
    if subjects is not None:
        v = v.merge(subjects[["arm", "subject_id"]], on=["arm", "subject_id"])
    v["met"] = met(v, d)
    rows = []
    for arm in obs.arms:
        va = v[v["arm"] == arm]
        for day in days:
            near = va[np.abs(va["t_days"] - day) <= tolerance_days]
            near = near.loc[near.groupby("subject_id")["t_days"].idxmin()] if len(near) else near
            n, k = len(near), int(near["met"].sum()) if len(near) else 0
            lo, hi = wilson_interval(np.array(k), np.array(n))
            rows.append(
                {"arm": arm, "t_days": day, "n": n, "n_met": k,
                 "rate": k / n if n else np.nan, "ci_low": float(lo), "ci_high": float(hi)}
            )  # fmt: skip
    return pd.DataFrame(rows)


def ever_met(obs: Observations, d: EndpointDefinition, window: tuple[float, float]) -> pd.DataFrame:
    """Per subject (arm, subject_id): whether ``d`` was met at any visit in ``window`` (days)."""
    v = visits_met(obs, d)
    inside = v[(v["t_days"] >= window[0]) & (v["t_days"] <= window[1])]
    out = inside.groupby(["arm", "subject_id"], sort=False)["met"].any().reset_index()
    return out


def sustained(
    obs: Observations, d: EndpointDefinition, window: tuple[float, float]
) -> pd.DataFrame:
    """Per subject: whether ``d`` was met at every observed visit in ``window`` (sustained
    response or remission); subjects without a visit there count as not sustained."""
    v = visits_met(obs, d)
    inside = v[(v["t_days"] >= window[0]) & (v["t_days"] <= window[1])]
    out = inside.groupby(["arm", "subject_id"], sort=False)["met"].all().reset_index()
    subjects = v[["arm", "subject_id"]].drop_duplicates()
    out = subjects.merge(out, on=["arm", "subject_id"], how="left").fillna({"met": False})
    return out.astype({"met": bool})


def time_to_event(
    obs: Observations,
    d: EndpointDefinition,
    *,
    from_day: float = 0.0,
    subjects: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Time from ``from_day`` to the first visit at which ``d`` is met (e.g. relapse), per subject.

    Columns: arm, subject_id, event (bool), t_days (visit time of the event, or of the last visit
    when censored), lower_days and upper_days (the interval holding the event: the last visit
    before it and the event visit; for a censored subject, the last visit and +inf). Times are
    relative to ``from_day``. ``subjects`` (arm, subject_id) restricts the analysis, e.g. to
    responders; subjects with no visit after ``from_day`` are left out. With ``booster_needed``,
    a booster given by the protocol's rules (a ``booster`` event) is also an event, timed at the
    decision, whichever comes first.
    """
    v = madrs_visits(obs)
    if subjects is not None:
        v = v.merge(subjects[["arm", "subject_id"]], on=["arm", "subject_id"])
    v = v[v["t_days"] >= from_day].reset_index(drop=True)
    v["met"] = met(v, d, from_day=from_day)
    boosters = _first_boosters(obs, from_day) if d.booster_needed else {}
    rows = []
    for (arm, subject), g in v.groupby(["arm", "subject_id"], sort=False):
        t = g["t_days"].to_numpy() - from_day
        hit = np.flatnonzero(g["met"].to_numpy())
        t_hit = t[hit[0]] if len(hit) else np.inf
        t_boost = boosters.get((arm, subject), np.inf) - from_day
        if len(t) < 2 and not len(hit) and not np.isfinite(t_boost):
            continue
        if t_boost < t_hit:
            before = t[t < t_boost]
            rows.append((arm, subject, True, t_boost, before[-1] if len(before) else 0.0, t_boost))
        elif len(hit):
            j = hit[0]
            lower = t[j - 1] if j > 0 else 0.0
            rows.append((arm, subject, True, t[j], lower, t[j]))
        else:
            rows.append((arm, subject, False, t[-1], t[-1], np.inf))
    return pd.DataFrame(
        rows, columns=["arm", "subject_id", "event", "t_days", "lower_days", "upper_days"]
    )


def _first_boosters(obs: Observations, from_day: float) -> dict[tuple[str, str], float]:
    """Day of each subject's first booster decision at or after ``from_day``."""
    ev = obs.events
    b = ev[(ev["kind"] == "booster") & (ev["t_days"] >= from_day)]
    return b.groupby(["arm", "subject_id"])["t_days"].min().to_dict()


def change_from_baseline(obs: Observations, days: list[float], tolerance_days: float = 0.5):
    """Per arm and day: n, mean and SD of MADRS change from baseline (negative = better)."""
    v = madrs_visits(obs)
    v["change"] = v["madrs"] - v["baseline"]
    rows = []
    for arm in obs.arms:
        va = v[v["arm"] == arm]
        for day in days:
            near = va[np.abs(va["t_days"] - day) <= tolerance_days]
            c = near["change"].to_numpy()
            rows.append(
                {"arm": arm, "t_days": day, "n": len(c),
                 "mean_change": float(c.mean()) if len(c) else np.nan,
                 "sd_change": float(c.std(ddof=1)) if len(c) > 1 else np.nan}
            )  # fmt: skip
    return pd.DataFrame(rows)


def exposure(obs: Observations) -> pd.DataFrame:
    """Per arm: subjects, ketamine/esketamine administrations and mg per subject, therapy
    sessions per subject, and MADRS visits per subject."""
    ev = obs.events
    doses = ev[(ev["kind"] == "dose") & ~ev["drug"].isin(PLACEBOS)]
    rows = []
    for arm in obs.arms:
        n = obs.visits.loc[obs.visits["arm"] == arm, "subject_id"].nunique()
        da = doses[doses["arm"] == arm]
        sessions = ev[(ev["arm"] == arm) & (ev["kind"] == "session")]
        visits = obs.visits[(obs.visits["arm"] == arm) & (obs.visits["measure"] == "madrs")]
        rows.append(
            {"arm": arm, "n": n,
             "infusions_per_patient": len(da) / n if n else np.nan,
             "ketamine_mg_per_patient": float(da["amount_mg"].sum()) / n if n else np.nan,
             "sessions_per_patient": len(sessions) / n if n else np.nan,
             "visits_per_patient": len(visits) / n if n else np.nan}
        )  # fmt: skip
    return pd.DataFrame(rows)
