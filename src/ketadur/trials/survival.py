"""Time-to-event statistics between arms, on the output of
:func:`ketadur.trials.endpoints.time_to_event` (lifelines does the estimation).

- :func:`kaplan_meier`: Kaplan-Meier curve with its 95 % band (exponential Greenwood) per arm, and
  the number at risk;
- :func:`median_time`: median time to event with its 95 % CI;
- :func:`logrank`: log-rank test between two arms;
- :func:`hazard_ratio`: Cox proportional-hazards ratio of one arm against a reference arm;
- :func:`turnbull`: the interval-censored (Turnbull / NPMLE) estimate, since relapse is only seen
  at visits.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import median_survival_times


def _arm(tte: pd.DataFrame, arm: str) -> pd.DataFrame:
    return tte[tte["arm"] == arm]


def kaplan_meier(tte: pd.DataFrame, arm: str) -> KaplanMeierFitter | None:
    """The fitted Kaplan-Meier estimator of one arm (visit times), or None without subjects."""
    a = _arm(tte, arm)
    if a.empty:
        return None
    kmf = KaplanMeierFitter(label=arm)
    kmf.fit(a["t_days"], event_observed=a["event"].astype(bool))
    return kmf


def km_table(tte: pd.DataFrame, arm: str) -> pd.DataFrame:
    """Survival (event-free fraction), its 95 % band and the number at risk at each event time."""
    kmf = kaplan_meier(tte, arm)
    if kmf is None:
        return pd.DataFrame(columns=["t_days", "survival", "ci_low", "ci_high", "at_risk"])
    ci = kmf.confidence_interval_survival_function_
    return pd.DataFrame(
        {
            "t_days": kmf.survival_function_.index.to_numpy(),
            "survival": kmf.survival_function_.iloc[:, 0].to_numpy(),
            "ci_low": ci.iloc[:, 0].to_numpy(),
            "ci_high": ci.iloc[:, 1].to_numpy(),
            "at_risk": kmf.event_table["at_risk"].to_numpy(),
        }
    )


def median_time(tte: pd.DataFrame, arm: str) -> dict[str, float | None]:
    """Median time to event (days) with its 95 % CI; None where not reached."""
    kmf = kaplan_meier(tte, arm)
    if kmf is None:
        return {"median": None, "ci_low": None, "ci_high": None}
    ci = median_survival_times(kmf.confidence_interval_)

    def finite(x: float) -> float | None:
        return float(x) if math.isfinite(x) else None

    return {
        "median": finite(kmf.median_survival_time_),
        "ci_low": finite(ci.iloc[0, 0]),
        "ci_high": finite(ci.iloc[0, 1]),
    }


def event_fraction_by(tte: pd.DataFrame, arm: str, day: float) -> float | None:
    """Kaplan-Meier fraction with the event by ``day`` (1 - survival), None without subjects."""
    kmf = kaplan_meier(tte, arm)
    if kmf is None:
        return None
    return float(1.0 - kmf.survival_function_at_times(day).iloc[0])


def logrank(tte: pd.DataFrame, arm: str, reference: str) -> dict[str, float | None]:
    """Log-rank test of ``arm`` against ``reference``: chi-square statistic and p-value."""
    a, b = _arm(tte, arm), _arm(tte, reference)
    if a.empty or b.empty or not (a["event"].any() or b["event"].any()):
        return {"statistic": None, "p_value": None}
    r = logrank_test(a["t_days"], b["t_days"], a["event"], b["event"])
    return {"statistic": float(r.test_statistic), "p_value": float(r.p_value)}


def hazard_ratio(tte: pd.DataFrame, arm: str, reference: str) -> dict[str, float | None]:
    """Cox hazard ratio of ``arm`` vs ``reference`` with its 95 % CI (None when not estimable:
    an arm without subjects, or no event in either arm)."""
    a, b = _arm(tte, arm), _arm(tte, reference)
    none = {"hazard_ratio": None, "ci_low": None, "ci_high": None}
    if a.empty or b.empty or not a["event"].any() or not b["event"].any():
        return none
    df = pd.DataFrame(
        {
            "t": np.concatenate([a["t_days"], b["t_days"]]),
            "e": np.concatenate([a["event"], b["event"]]).astype(int),
            "treated": np.r_[np.ones(len(a)), np.zeros(len(b))],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines' convergence notes on separable data
        cph = CoxPHFitter().fit(df, duration_col="t", event_col="e")
    s = cph.summary.loc["treated"]
    return {
        "hazard_ratio": float(s["exp(coef)"]),
        "ci_low": float(s["exp(coef) lower 95%"]),
        "ci_high": float(s["exp(coef) upper 95%"]),
    }


def turnbull(tte: pd.DataFrame, arm: str) -> KaplanMeierFitter | None:
    """Interval-censored (Turnbull) estimate of one arm: each event lies in (lower, upper]."""
    a = _arm(tte, arm)
    if a.empty or not a["event"].any():
        return None
    kmf = KaplanMeierFitter(label=f"{arm} (interval-censored)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kmf.fit_interval_censoring(a["lower_days"], a["upper_days"])
    return kmf


def interval_event_fraction_by(tte: pd.DataFrame, arm: str, day: float) -> float | None:
    """Fraction with the event by ``day`` from the Turnbull estimate (mid-point of its bounds
    where the NPMLE is not unique); 0 when the arm has no events, None without subjects."""
    if _arm(tte, arm).empty:
        return None
    kmf = turnbull(tte, arm)
    if kmf is None:
        return 0.0
    sf = kmf.survival_function_
    at = sf[sf.index <= day]
    return float(1.0 - at.iloc[-1].mean()) if len(at) else 0.0


def nnt(rate_treated: float, rate_control: float) -> float | None:
    """Number needed to treat for one more success (1 / rate difference); None when the
    difference is zero or not positive."""
    diff = rate_treated - rate_control
    return 1.0 / diff if diff > 0 else None
