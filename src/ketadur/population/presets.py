"""Virtual-population presets: covariate distributions and inter-individual variability (IIV).

Every distribution carries its source or the word "assumed" with a rationale; "assumed" numbers
are modelling choices to be replaced by calibration (issue: calibration) or by real study data.
Covariates the model does not (yet) use (sex, failed antidepressant trials, anhedonia) are drawn and
recorded so that trials can be stratified and real data compared, and they are said to be unused.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ketadur.errors import KetadurInputError


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TruncNormal(_Frozen):
    """Normal(mean, sd) truncated to [lower, upper] (redrawn, then clipped after 100 tries)."""

    kind: Literal["normal"] = "normal"
    mean: float
    sd: float = Field(gt=0)
    lower: float
    upper: float
    source: str


class LogNormal(_Frozen):
    """Log-normal with the given median and coefficient of variation, truncated like above."""

    kind: Literal["lognormal"] = "lognormal"
    median: float = Field(gt=0)
    cv: float = Field(gt=0, le=3)
    lower: float
    upper: float
    source: str


class Iiv(_Frozen):
    """Log-normal IIV on model parameters: per-parameter CV, and correlations between them."""

    cv: dict[str, float]
    correlations: dict[tuple[str, str], float] = {}
    source: str


class Preset(_Frozen):
    """A named virtual population."""

    name: str
    description: str
    female_fraction: float = Field(ge=0, le=1)
    female_source: str
    age_years: TruncNormal
    weight_kg_female: LogNormal
    weight_kg_male: LogNormal
    met_allele_frequency: float = Field(ge=0, le=1)
    baseline_madrs: TruncNormal
    extra_failed_trials_mean: float = Field(ge=0)
    anhedonia_shaps: TruncNormal
    chronic_stress_beta: tuple[float, float]
    tolerance_propensity: LogNormal
    background_antidepressant_fraction: float = Field(ge=0, le=1)
    exercise_sessions_per_week_mean: float = Field(ge=0)
    sleep_h_per_night: TruncNormal
    baseline_sbp_mmhg: TruncNormal
    situational_fraction: float = Field(ge=0, le=1)
    situational_madrs: tuple[float, float]
    situational_half_life_days: LogNormal
    life_events_per_year: float = Field(ge=0)
    life_event_mean_points: float = Field(gt=0)
    weight_exponent_k10: float
    iiv: Iiv

    @model_validator(mode="after")
    def _bounds(self) -> Preset:
        for name in ("age_years", "baseline_madrs", "sleep_h_per_night", "baseline_sbp_mmhg"):
            d = getattr(self, name)
            if not d.lower < d.upper:
                raise ValueError(f"{name}: lower must be below upper")
        return self


# ----------------------------------------------------------------------------------- sources

_NHANES = (
    "Fryar CD et al. Anthropometric reference data for children and adults: United States, "
    "2015-2018. Vital Health Stat 3(46), 2021 (adult mean weight: men 90.6 kg, women 77.5 kg)"
)
_MET = (
    "BDNF rs6265 (Val66Met) Met allele frequency ~0.2 in European-ancestry samples, higher "
    "(0.4-0.5) in East Asian samples: Shimizu E et al. Am J Med Genet B 2004;126B:122-123; "
    "genotypes in Hardy-Weinberg proportion"
)
_ALLOMETRY = (
    "allometric scaling of clearance with weight^0.75 (Anderson BJ, Holford NHG. Annu Rev "
    "Pharmacol Toxicol 2008;48:303-332); volumes scale with weight, so k10 scales with weight^-0.25"
)
_IIV = Iiv(
    cv={
        "v1_l_per_kg": 0.30,
        "k10_per_min": 0.30,
        "k12_per_min": 0.30,
        "k21_per_min": 0.30,
        "cl_norketamine_l_per_h_per_kg": 0.30,
        "bdnf_release_gain": 0.30,
        "potentiation_formation_per_h": 0.25,
        "structural_half_life_days": 0.30,
        "stabilisation_per_day": 0.30,
        "relief_half_max": 0.25,
        "therapy_consolidation_gain": 0.30,
        "sbp_emax_mmhg": 0.30,
        "expectancy_gain_per_administration": 0.50,
        "madrs_refractory_fraction": 0.80,
    },
    correlations={("v1_l_per_kg", "k10_per_min"): -0.4},
    source=(
        "PK: assumed 30% CV, the usual magnitude of IIV on ketamine/esketamine clearance and "
        "volume in population PK analyses (e.g. Perez-Ruixo C et al. Clin Pharmacokinet "
        "2021;60:501-516); the V1-k10 correlation is assumed (independent CL and V make k10 = "
        "CL/V1 negatively correlated with V1). PD and expectancy: assumed, to be calibrated "
        "(docs/calibration.md)"
    ),
)


def _base(**over: object) -> Preset:
    values: dict[str, object] = {
        "name": "trd-adults",
        "description": (
            "Adults (18-65) with treatment-resistant depression, as enrolled in IV ketamine trials"
        ),
        "female_fraction": 0.55,
        "female_source": "assumed: TRD ketamine trials typically enrol 50-65% women",
        "age_years": TruncNormal(
            mean=45.0,
            sd=12.0,
            lower=18.0,
            upper=65.0,
            source="assumed: mean age in IV ketamine TRD trials is typically 40-50 years",
        ),
        "weight_kg_female": LogNormal(
            median=75.0, cv=0.25, lower=40.0, upper=180.0, source=_NHANES
        ),
        "weight_kg_male": LogNormal(median=88.0, cv=0.22, lower=45.0, upper=200.0, source=_NHANES),
        "met_allele_frequency": 0.2,
        "baseline_madrs": TruncNormal(
            mean=32.0,
            sd=5.0,
            lower=20.0,
            upper=50.0,
            source="assumed: baseline MADRS in IV ketamine TRD RCTs is typically 30-35",
        ),
        "extra_failed_trials_mean": 1.5,
        "anhedonia_shaps": TruncNormal(
            mean=7.0,
            sd=3.0,
            lower=0.0,
            upper=14.0,
            source="assumed (SHAPS 0-14); recorded, not used by the model",
        ),
        "chronic_stress_beta": (2.0, 4.0),
        "tolerance_propensity": LogNormal(
            median=1.0, cv=0.5, lower=0.1, upper=10.0, source="assumed"
        ),
        "background_antidepressant_fraction": 0.5,
        "exercise_sessions_per_week_mean": 1.0,
        "sleep_h_per_night": TruncNormal(mean=6.8, sd=1.0, lower=3.0, upper=11.0, source="assumed"),
        "baseline_sbp_mmhg": TruncNormal(
            mean=125.0, sd=15.0, lower=90.0, upper=200.0, source="assumed (adult population)"
        ),
        "situational_fraction": 0.2,
        "situational_madrs": (2.0, 8.0),
        "situational_half_life_days": LogNormal(
            median=30.0, cv=0.5, lower=5.0, upper=365.0, source="assumed"
        ),
        # Stressful life events are the model's cause of relapse on continued treatment; set
        # (not fitted) so that SUSTAIN-1's esketamine arm relapses at about its published rate
        # (26.7 %) with the placebo arm's withdrawal relapse fitted alongside (docs/calibration.md).
        "life_events_per_year": 1.0,
        "life_event_mean_points": 8.0,
        "weight_exponent_k10": -0.25,
        "iiv": _IIV,
    }
    values.update(over)
    return Preset.model_validate(values)


PRESETS: dict[str, Preset] = {
    "trd-adults": _base(),
    "sustain1-like": _base(
        name="sustain1-like",
        description=(
            "Adults (18-64) with TRD as in SUSTAIN-1 (Daly EJ et al. JAMA Psychiatry "
            "2019;76:893-903): more severe at baseline; the protocol itself starts the oral "
            "antidepressant, so none is on one before"
        ),
        female_fraction=0.65,
        female_source="assumed, close to SUSTAIN-1's about two-thirds women",
        age_years=TruncNormal(
            mean=46.0,
            sd=11.0,
            lower=18.0,
            upper=64.0,
            source="SUSTAIN-1 enrolled adults 18-64 (Daly 2019); mean and SD assumed",
        ),
        baseline_madrs=TruncNormal(
            mean=37.5,
            sd=5.5,
            lower=28.0,
            upper=55.0,
            source="SUSTAIN-1 required MADRS >= 28 (Daly 2019); mean and SD assumed",
        ),
        background_antidepressant_fraction=0.0,
    ),
    "young-adults": _base(
        name="young-adults",
        description="Young adults (18-30) with TRD",
        age_years=TruncNormal(mean=24.0, sd=3.5, lower=18.0, upper=30.0, source="assumed"),
        weight_kg_female=LogNormal(median=70.0, cv=0.25, lower=40.0, upper=180.0, source=_NHANES),
        weight_kg_male=LogNormal(median=82.0, cv=0.22, lower=45.0, upper=200.0, source=_NHANES),
    ),
    "acute-ed-adults": _base(
        name="acute-ed-adults",
        description=(
            "Adults with severe depression and suicidal ideation seen in an emergency department "
            "(the 2011 ketamine bolus study, PMID 21565879): baseline MADRS 40.4 (s.e.m. 1.8, "
            "n = 14); otherwise as trd-adults"
        ),
        baseline_madrs=TruncNormal(
            mean=40.4,
            sd=6.7,
            lower=25.0,
            upper=60.0,
            source="PMID 21565879: mean 40.4, s.e.m. 1.8 with n = 14 (SD 6.7); bounds assumed",
        ),
    ),
    "older-adults": _base(
        name="older-adults",
        description="Older adults (65-90) with TRD",
        age_years=TruncNormal(mean=71.0, sd=5.0, lower=65.0, upper=90.0, source="assumed"),
        weight_kg_female=LogNormal(median=72.0, cv=0.23, lower=38.0, upper=160.0, source=_NHANES),
        weight_kg_male=LogNormal(median=84.0, cv=0.2, lower=45.0, upper=180.0, source=_NHANES),
        baseline_sbp_mmhg=TruncNormal(
            mean=135.0, sd=17.0, lower=95.0, upper=210.0, source="assumed (older adults)"
        ),
    ),
}
"""The population presets, by name; ``trd-adults`` is the default."""

DEFAULT_PRESET = "trd-adults"
_LIFE_EVENTS = (
    "assumed: set with SUSTAIN-1's esketamine-arm relapse in view (Daly EJ et al. JAMA "
    "Psychiatry 2019;76:893-903); severe events precede most depressive onsets (Kendler KS et "
    "al. Am J Psychiatry 1999;156:837-841)"
)
SOURCES = {
    "met_allele_frequency": _MET,
    "weight_exponent_k10": _ALLOMETRY,
    "life_events_per_year": _LIFE_EVENTS,
    "life_event_mean_points": _LIFE_EVENTS,
}
"""Sources of the scalar preset fields that carry no source of their own."""


def get_preset(name: str) -> Preset:
    """The preset called ``name``, or a :class:`KetadurInputError` listing the known ones."""
    if name not in PRESETS:
        raise KetadurInputError("preset", f"unknown preset; choose from {sorted(PRESETS)}", name)
    return PRESETS[name]
