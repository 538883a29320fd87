"""The typed registry of every model parameter: unit, default, plausible range and source.

Each parameter name carries its unit (``k10_per_min``, ``v1_l_per_kg``). ``status`` says how far the
number can be trusted:

- ``published``: taken from the cited study (``provenance`` says whether it was read in the study or
  in a secondary transcription);
- ``calibrated``: chosen so that the model reproduces the cited published result;
- ``assumed``: a modelling assumption with a stated rationale, to be calibrated against trials.

The registry is immutable; :class:`ParameterSet` holds one set of values and returns new sets from
:meth:`ParameterSet.replace`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from ketadur.errors import KetadurInputError

Status = Literal["published", "calibrated", "assumed"]

LN2 = math.log(2.0)

# Sources cited by more than one parameter.
_CLEMENTS = (
    "Clements JA, Nimmo WS. Br J Anaesth 1981;53:27-30, doi:10.1093/bja/53.1.27 (2-compartment "
    "model, 250 ug/kg bolus), as transcribed in opentiva (opentiva/ketamine.py, Clements250); "
    "CL = k10*V1 = 80 L/h and Vss = 289 L at 70 kg agree with the Kamp 2020 meta-analysis "
    "(79 L/h, 95% CI 69-90; 252 L/70 kg, 95% CI 200-304; Anesthesiology 133:1192)"
)
_PEREZ_RUIXO = (
    "Perez-Ruixo C et al. Clin Pharmacokinet 2021;60:501-516, doi:10.1007/s40262-020-00953-4 "
    "(esketamine/noresketamine population PK, 820 subjects)"
)
_EBERT = (
    "Ebert B et al. Eur J Pharmacol 1997;333:99-104 ([3H]MK-801 displacement, rat cortex): "
    "Ki (S)-ketamine 0.3 uM, (R)-ketamine 1.4 uM, (S)-norketamine 1.7 uM, (R)-norketamine 13 uM"
)
_TO_CALIBRATE = "assumed; calibrated against trials in the evidence library (issue: calibration)"


@dataclass(frozen=True, slots=True)
class Parameter:
    """One model parameter: its name (with unit), default, plausible range and source."""

    name: str
    default: float
    unit: str
    lower: float
    upper: float
    group: str
    description: str
    status: Status
    source: str

    def __post_init__(self) -> None:
        if not (self.lower <= self.default <= self.upper):
            raise ValueError(f"parameter {self.name}: default outside [{self.lower}, {self.upper}]")


def _p(
    name: str,
    default: float,
    unit: str,
    bounds: tuple[float, float],
    group: str,
    description: str,
    status: Status,
    source: str,
) -> Parameter:
    return Parameter(name, default, unit, bounds[0], bounds[1], group, description, status, source)


_PARAMETERS: tuple[Parameter, ...] = (
    # ---------------------------------------------------------------- pharmacokinetics (racemic IV)
    _p(
        "v1_l_per_kg",
        1.7522,
        "L/kg",
        (0.8, 2.5),
        "pk",
        "Central volume of ketamine per kg actual body weight.",
        "published",
        _CLEMENTS,
    ),
    _p(
        "k10_per_min",
        0.0109,
        "1/min",
        (0.005, 0.03),
        "pk",
        "Elimination rate constant of ketamine from the central compartment.",
        "published",
        _CLEMENTS,
    ),
    _p(
        "k12_per_min",
        0.0186,
        "1/min",
        (0.005, 0.05),
        "pk",
        "Central-to-peripheral transfer rate constant.",
        "published",
        _CLEMENTS,
    ),
    _p(
        "k21_per_min",
        0.0137,
        "1/min",
        (0.003, 0.05),
        "pk",
        "Peripheral-to-central transfer rate constant.",
        "published",
        _CLEMENTS,
    ),
    _p(
        "ke0_per_min",
        5.2,
        "1/min",
        (0.05, 10.0),
        "pk",
        "Plasma-to-brain (effect-site) equilibration rate constant of ketamine.",
        "assumed",
        "opentiva/ketamine.py (Clements250 class) derives ke0 = 5.2/min from an assumed time to "
        "peak effect of 1 min; no measured antidepressant-effect ke0 was found",
    ),
    _p(
        "fraction_unbound",
        0.55,
        "1",
        (0.45, 0.65),
        "pk",
        "Unbound fraction of ketamine and norketamine in plasma (free drug reaches the NMDA "
        "receptor).",
        "published",
        "Esketamine (Spravato) prescribing information: plasma protein binding 43-45% (secondary, "
        "Current Psychiatry 2019 label summary)",
    ),
    _p(
        "fraction_to_norketamine",
        0.71,
        "1",
        (0.5, 0.9),
        "pk",
        "Fraction of systemic ketamine clearance that forms norketamine.",
        "published",
        _PEREZ_RUIXO + ": kmet/(kmet+kel) = 2.77/(2.77+1.11) from Table 3 (secondary)",
    ),
    _p(
        "v_norketamine_l_per_kg",
        2.64,
        "L/kg",
        (1.0, 5.0),
        "pk",
        "Volume of distribution of norketamine per kg (185 L at 70 kg).",
        "published",
        _PEREZ_RUIXO + ": noresketamine Vss 185 L (read in source)",
    ),
    _p(
        "cl_norketamine_l_per_h_per_kg",
        0.543,
        "L/h/kg",
        (0.2, 1.0),
        "pk",
        "Clearance of norketamine per kg (38 L/h at 70 kg).",
        "published",
        _PEREZ_RUIXO + ": noresketamine apparent clearance 38 L/h (read in source)",
    ),
    _p(
        "ke0_norketamine_per_min",
        5.2,
        "1/min",
        (0.05, 10.0),
        "pk",
        "Plasma-to-brain equilibration rate constant of norketamine.",
        "assumed",
        "assumed equal to ketamine's ke0 (no published norketamine ke0 found)",
    ),
    # ---------------------------------------------------------------- extravascular routes
    _p(
        "bioavailability_oral",
        0.20,
        "1",
        (0.08, 0.30),
        "pk",
        "Absolute oral bioavailability of ketamine.",
        "published",
        "Yanagihara Y et al. Biopharm Drug Dispos 2003;24:37-43, doi:10.1002/bdd.336: oral ~20% "
        "(read in source); Fanta 2015 found 8% for S-ketamine",
    ),
    _p(
        "ka_oral_per_h",
        1.0,
        "1/h",
        (0.3, 4.0),
        "pk",
        "First-order absorption rate constant after oral dosing.",
        "assumed",
        _TO_CALIBRATE + "; target: Grant 1981 oral 0.5 mg/kg Cmax 45 +/- 10 ng/mL (Zanos 2018 "
        "Pharmacol Rev Table 1)",
    ),
    _p(
        "bioavailability_intranasal",
        0.50,
        "1",
        (0.3, 0.6),
        "pk",
        "Absolute bioavailability of intranasal (es)ketamine with the esketamine device.",
        "published",
        _PEREZ_RUIXO + ": 54% at 56 mg, 51% at 84 mg (read in source)",
    ),
    _p(
        "ka_intranasal_per_h",
        2.93,
        "1/h",
        (1.0, 6.0),
        "pk",
        "Nasal absorption rate constant.",
        "published",
        _PEREZ_RUIXO + ": Table 3 (secondary)",
    ),
    _p(
        "bioavailability_im",
        0.93,
        "1",
        (0.8, 1.0),
        "pk",
        "Absolute bioavailability of intramuscular ketamine.",
        "published",
        "Clements JA, Nimmo WS, Grant IS. J Pharm Sci 1982;71:539-542",
    ),
    _p(
        "ka_im_per_h",
        3.0,
        "1/h",
        (1.0, 8.0),
        "pk",
        "Absorption rate constant after intramuscular injection.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "fraction_presystemic_to_norketamine",
        0.62,
        "1",
        (0.3, 0.9),
        "pk",
        "Fraction of the non-bioavailable oral/intranasal dose converted to norketamine during "
        "first pass.",
        "calibrated",
        "Fanta S et al. Eur J Clin Pharmacol 2015;71:441-447: norketamine AUC 16.5x S-ketamine "
        "after oral dosing (F 8%); solved for this fraction with the registry's clearances",
    ),
    # ---------------------------------------------------------------- NMDA receptor
    _p(
        "ki_s_ketamine_um",
        0.3,
        "uM",
        (0.1, 1.0),
        "cascade",
        "NMDA receptor affinity (Ki) of S-ketamine.",
        "published",
        _EBERT,
    ),
    _p(
        "ki_r_ketamine_um",
        1.4,
        "uM",
        (0.5, 4.0),
        "cascade",
        "NMDA receptor affinity (Ki) of R-ketamine.",
        "published",
        _EBERT,
    ),
    _p(
        "ki_s_norketamine_um",
        1.7,
        "uM",
        (0.5, 5.0),
        "cascade",
        "NMDA receptor affinity (Ki) of S-norketamine.",
        "published",
        _EBERT,
    ),
    _p(
        "ki_r_norketamine_um",
        13.0,
        "uM",
        (5.0, 30.0),
        "cascade",
        "NMDA receptor affinity (Ki) of R-norketamine.",
        "published",
        _EBERT,
    ),
    # ---------------------------------------------------------------- signalling cascade
    _p(
        "glutamate_half_life_min",
        15.0,
        "min",
        (5.0, 60.0),
        "cascade",
        "Half-life with which the glutamate surge follows NMDA occupancy (disinhibition).",
        "assumed",
        _TO_CALIBRATE + "; prefrontal glutamate efflux rises within minutes of "
        "subanaesthetic ketamine (Moghaddam B et al. J Neurosci 1997;17:2921-2927)",
    ),
    _p(
        "glutamate_gain",
        3.0,
        "1",
        (0.5, 10.0),
        "cascade",
        "Glutamate surge (relative to baseline) per unit NMDA occupancy.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "bdnf_half_life_h",
        1.0,
        "h",
        (0.25, 6.0),
        "cascade",
        "Half-life of the activity-dependent BDNF release signal.",
        "assumed",
        _TO_CALIBRATE
        + "; BDNF translation rises within 30 min of ketamine in mice (Autry AE et al. "
        "Nature 2011;475:91-95)",
    ),
    _p(
        "bdnf_release_gain",
        0.6,
        "1",
        (0.1, 3.0),
        "cascade",
        "BDNF release (relative to baseline) per unit AMPA throughput.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "bdnf_synaptic_feedback",
        0.05,
        "1",
        (0.0, 1.0),
        "cascade",
        "BDNF release sustained by potentiated synapses (per unit structural state).",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "val66met_release_reduction_per_allele",
        0.25,
        "1",
        (0.05, 0.5),
        "cascade",
        "Fractional loss of activity-dependent BDNF release per Met allele.",
        "assumed",
        _TO_CALIBRATE + "; Met reduces activity-dependent BDNF secretion (Egan MF et al. Cell "
        "2003;112:257-269) and Met carriers improve less after ketamine (Laje G et al. Biol "
        "Psychiatry 2012;72:e27-e28)",
    ),
    _p(
        "erk_activation_per_h",
        2.0,
        "1/h",
        (0.5, 10.0),
        "cascade",
        "ERK phosphorylation rate per unit TrkB activation.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "erk_deactivation_per_h",
        1.5,
        "1/h",
        (0.2, 10.0),
        "cascade",
        "ERK dephosphorylation rate by DUSP6 at baseline DUSP6 level.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "dusp6_half_life_h",
        6.0,
        "h",
        (1.0, 24.0),
        "cascade",
        "Turnover half-life of DUSP6 protein.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "dusp6_induction_gain",
        1.5,
        "1",
        (0.0, 5.0),
        "cascade",
        "DUSP6 induction per unit ERK activity (negative feedback).",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "dusp6_inhibitor_block_fraction",
        0.8,
        "1",
        (0.0, 1.0),
        "cascade",
        "Fraction of DUSP6 phosphatase activity blocked while a DUSP6 inhibitor is present.",
        "assumed",
        _TO_CALIBRATE + "; BCI, Ma Z et al. Science 2025 (DUSP6 inhibition extends "
        "ketamine's effect up to 2 months in mice)",
    ),
    _p(
        "mtor_erk_weight",
        1.0,
        "1",
        (0.0, 3.0),
        "cascade",
        "Weight of ERK (relative to TrkB-PI3K/Akt) in driving mTORC1.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "mtor_half_activation",
        0.6,
        "1",
        (0.1, 2.0),
        "cascade",
        "TrkB+ERK drive giving half-maximal mTORC1 activation.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "mtor_hill",
        4.0,
        "1",
        (1.0, 8.0),
        "cascade",
        "Steepness of mTORC1 activation (synaptic protein synthesis needs a strong burst).",
        "assumed",
        _TO_CALIBRATE + "; ketamine's mTORC1 activation is transient, within hours "
        "(Li N et al. Science 2010;329:959-964)",
    ),
    # ---------------------------------------------------------------- synaptic states
    _p(
        "acute_formation_per_h",
        2.0,
        "1/h",
        (0.5, 10.0),
        "synapse",
        "Rate at which NMDA blockade at rest builds the acute response (rapid BDNF translation "
        "acting through TrkB, before any new synapse forms), per unit occupancy.",
        "assumed",
        "assumed: the behavioural response to NMDA blockade at rest appears within 30 min in "
        "mice, through eEF2 dephosphorylation and rapid BDNF translation, and is absent in "
        "BDNF-deficient mice (Autry AE et al. Nature 2011;475:91-95)",
    ),
    _p(
        "acute_half_life_h",
        4.0,
        "h",
        (0.5, 48.0),
        "synapse",
        "Half-life of the acute response once NMDA blockade ends.",
        "assumed",
        _TO_CALIBRATE + "; new spines are needed to sustain the response, not to start it "
        "(Moda-Sava RN et al. Science 2019;364:eaat8078), so the first hours rest on a "
        "shorter-lived process",
    ),
    _p(
        "potentiation_formation_per_h",
        0.6,
        "1/h",
        (0.05, 5.0),
        "synapse",
        "Rate of fast functional potentiation (AMPA insertion) per unit mTORC1 activity.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "potentiation_half_life_h",
        24.0,
        "h",
        (4.0, 72.0),
        "synapse",
        "Half-life of fast functional potentiation (hours-days).",
        "assumed",
        _TO_CALIBRATE + "; synaptic proteins rise within hours and stay up ~72 h (Li N et al. "
        "Science 2010;329:959-964)",
    ),
    _p(
        "structural_formation_per_day",
        1.5,
        "1/day",
        (0.1, 10.0),
        "synapse",
        "Rate at which functional potentiation is converted into structural synaptic change "
        "(spines).",
        "assumed",
        _TO_CALIBRATE + "; spine formation is altered 12-24 h after a dose (Moda-Sava R et al. "
        "Science 2019;364:eaat8078)",
    ),
    _p(
        "structural_half_life_days",
        4.0,
        "day",
        (1.0, 21.0),
        "synapse",
        "Half-life of the structural synaptic state under baseline homeostasis.",
        "assumed",
        _TO_CALIBRATE + "; single-infusion benefit peaks at 24 h and is lost between 5 and 8 days "
        "(Shiroma 2020 introduction, evidence shiroma2020_intro_duration)",
    ),
    _p(
        "erk_decay_protection",
        3.0,
        "1",
        (0.0, 20.0),
        "synapse",
        "Slowing of structural decay per unit sustained ERK activity.",
        "assumed",
        _TO_CALIBRATE + "; ERK is required for ketamine's sustained but not acute effects "
        "(Ma 2025)",
    ),
    _p(
        "stabilisation_per_day",
        0.1,
        "1/day",
        (0.0, 2.0),
        "synapse",
        "Rate at which new structural synapses mature into stabilised synapses.",
        "assumed",
        _TO_CALIBRATE + "; repeated infusions have cumulative, longer effects (median relapse 18 "
        "days after six infusions, Murrough JW et al. Biol Psychiatry 2013;74:250-256)",
    ),
    _p(
        "erk_stabilisation_gain",
        6.0,
        "1",
        (0.0, 20.0),
        "synapse",
        "Acceleration of synapse stabilisation per unit ERK activity (ERK-dependent consolidation).",
        "assumed",
        _TO_CALIBRATE + "; DUSP6 inhibition augments ketamine-induced potentiation and "
        "extends its effect to ~2 months (Ma 2025)",
    ),
    _p(
        "stabilised_half_life_days",
        35.0,
        "day",
        (5.0, 180.0),
        "synapse",
        "Half-life of stabilised synapses under baseline homeostasis.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "homeostasis_gain",
        1.5,
        "1",
        (0.0, 10.0),
        "synapse",
        "Acceleration of structural decay per unit homeostatic counter-regulation.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "homeostasis_build_per_h",
        0.02,
        "1/h",
        (0.0, 0.5),
        "synapse",
        "Build-up of homeostatic counter-regulation per unit glutamate surge.",
        "assumed",
        _TO_CALIBRATE + "; makes higher doses stronger but shorter-lived",
    ),
    _p(
        "homeostasis_half_life_days",
        7.0,
        "day",
        (1.0, 60.0),
        "synapse",
        "Half-life of homeostatic counter-regulation.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "tolerance_build_per_h",
        0.01,
        "1/h",
        (0.0, 0.5),
        "synapse",
        "Tolerance built per hour of full NMDA occupancy (scaled by the patient's propensity).",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "tolerance_half_life_days",
        21.0,
        "day",
        (3.0, 120.0),
        "synapse",
        "Half-life of tolerance once dosing stops.",
        "assumed",
        _TO_CALIBRATE,
    ),
    # ---------------------------------------------------------------- psychotherapy
    _p(
        "therapy_consolidation_gain",
        0.25,
        "1",
        (0.0, 3.0),
        "therapy",
        "Consolidated state built by one CBT session per unit plasticity present at the session.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "therapy_basal_plasticity",
        0.03,
        "1",
        (0.0, 0.5),
        "therapy",
        "Plasticity available to a session without ketamine (psychotherapy alone helps a little).",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "consolidation_half_life_days",
        90.0,
        "day",
        (14.0, 365.0),
        "therapy",
        "Half-life of the psychotherapy-consolidated state (months).",
        "assumed",
        _TO_CALIBRATE + "; with CBT after 4 infusions median time to relapse was 12 weeks "
        "(Wilkinson ST et al. Psychother Psychosom 2017;86:162-167)",
    ),
    _p(
        "mindfulness_session_weight",
        0.6,
        "1",
        (0.0, 1.5),
        "therapy",
        "Consolidation of a mindfulness session relative to a CBT session.",
        "assumed",
        _TO_CALIBRATE,
    ),
    # ---------------------------------------------------------------- expectancy (placebo response)
    _p(
        "expectancy_gain_per_administration",
        0.3,
        "1",
        (0.0, 0.95),
        "expectancy",
        "Expectancy (placebo response) built by one administration perceived as an active "
        "treatment (ketamine, esketamine, an active placebo such as midazolam), as a fraction of "
        "the room left below its maximum; it enters the relief signal like a synaptic state.",
        "assumed",
        _TO_CALIBRATE + "; 0.3 gives about the 24-h MADRS change of midazolam 0.045 mg/kg "
        "(-8.8 points, Murrough JW et al. Am J Psychiatry 2013;170:1134-1142) at typical values",
    ),
    _p(
        "expectancy_half_life_days",
        5.0,
        "day",
        (1.0, 60.0),
        "expectancy",
        "Half-life of the expectancy response once administrations stop.",
        "assumed",
        _TO_CALIBRATE + "; active-placebo responses fade within days to a week in "
        "midazolam-controlled ketamine trials (Murrough JW et al. Am J Psychiatry "
        "2013;170:1134-1142)",
    ),
    _p(
        "inert_placebo_expectancy_weight",
        0.2,
        "1",
        (0.0, 1.0),
        "expectancy",
        "Expectancy built by an inert (saline) placebo relative to an administration with "
        "perceptible effects: without dissociation or sedation the blind is weak.",
        "assumed",
        "assumed; model-estimated day-1 response 1 % (95 % CI 0-11) with saline against 18 % "
        "(6-30) with midazolam (Wilkinson ST et al. Neuropsychopharmacology 2019;44:1233-1238)",
    ),
    # ---------------------------------------------------------------- modifiers
    _p(
        "exercise_bdnf_gain_per_session_per_week",
        0.02,
        "1",
        (0.0, 0.1),
        "modifiers",
        "Rise in basal BDNF per weekly aerobic exercise session.",
        "assumed",
        _TO_CALIBRATE + "; exercise raises peripheral BDNF (Szuhany KL et al. J Psychiatr Res "
        "2015;60:56-64)",
    ),
    _p(
        "exercise_decay_reduction_per_session_per_week",
        0.03,
        "1",
        (0.0, 0.1),
        "modifiers",
        "Slowing of structural decay per weekly exercise session.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "sleep_deficit_decay_gain_per_h",
        0.08,
        "1/h",
        (0.0, 0.3),
        "modifiers",
        "Acceleration of structural decay per hour of nightly sleep below 7 h.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "chronic_stress_bdnf_reduction",
        0.15,
        "1",
        (0.0, 0.5),
        "modifiers",
        "Reduction of basal BDNF at maximal chronic stress (stress index 1).",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "chronic_stress_decay_gain",
        0.5,
        "1",
        (0.0, 2.0),
        "modifiers",
        "Acceleration of structural decay at maximal chronic stress.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "age_decay_gain_per_decade",
        0.1,
        "1",
        (0.0, 0.5),
        "modifiers",
        "Acceleration of structural decay per decade of age above 40 (younger patients keep "
        "plasticity longer).",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "antidepressant_bdnf_gain",
        0.2,
        "1",
        (0.0, 1.0),
        "modifiers",
        "Increase of activity-dependent BDNF release with a background oral antidepressant.",
        "assumed",
        _TO_CALIBRATE,
    ),
    # ---------------------------------------------------------------- symptoms and acute effects
    _p(
        "madrs_refractory_fraction",
        0.1,
        "1",
        (0.0, 0.99),
        "symptoms",
        "Fraction of the core MADRS that no amount of relief removes (symptoms refractory to "
        "the glutamatergic mechanism). It varies between patients, logit-normally (its odds are "
        "log-normal): where it is large, a patient does not respond however many infusions are "
        "given.",
        "assumed",
        _TO_CALIBRATE + "; about 30-40 % of treatment-resistant patients do not respond to six "
        "infusions (response 70.8 %, Murrough JW et al. Biol Psychiatry 2013;74:250-256; 59 %, "
        "Phillips JL et al. Am J Psychiatry 2019;176:401-409)",
    ),
    _p(
        "relief_half_max",
        0.7,
        "1",
        (0.05, 2.0),
        "symptoms",
        "Relief signal at which half the maximal MADRS relief is reached.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "relief_hill",
        1.0,
        "1",
        (1.0, 3.0),
        "symptoms",
        "Steepness of the MADRS relief as a function of the relief signal (Hill coefficient; 1 "
        "is hyperbolic). Above 1, a patient whose signal is well past half-maximal is near "
        "their ceiling, so responders tend to remit, and relief falls steeply once the signal "
        "drops below half-maximal.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "relief_weight_acute",
        1.0,
        "1",
        (0.0, 5.0),
        "symptoms",
        "Weight of the acute (hours) response to NMDA blockade in the relief signal.",
        "assumed",
        _TO_CALIBRATE + "; target: MADRS drop 2 h after an infusion (Murrough JW et al. Biol "
        "Psychiatry 2013;74:250-256)",
    ),
    _p(
        "relief_weight_potentiation",
        1.0,
        "1",
        (0.0, 3.0),
        "symptoms",
        "Weight of fast functional potentiation in the relief signal.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "relief_weight_structural",
        1.0,
        "1",
        (0.0, 3.0),
        "symptoms",
        "Weight of the structural synaptic state in the relief signal.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "relief_weight_stabilised",
        1.0,
        "1",
        (0.0, 3.0),
        "symptoms",
        "Weight of stabilised synapses in the relief signal.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "relief_weight_consolidated",
        1.0,
        "1",
        (0.0, 3.0),
        "symptoms",
        "Weight of the psychotherapy-consolidated state in the relief signal.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "cadss_emax_points",
        40.0,
        "CADSS points",
        (5.0, 92.0),
        "symptoms",
        "Maximal dissociation (CADSS total) at full NMDA occupancy.",
        "assumed",
        _TO_CALIBRATE + "; target: mean CADSS 7.7 (SD 9.2) after IV ketamine (van Schalkwyk GI et "
        "al. J Affect Disord 2018;227:11-16)",
    ),
    _p(
        "cadss_occupancy50",
        0.5,
        "1",
        (0.1, 0.9),
        "symptoms",
        "NMDA occupancy giving half-maximal dissociation.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "cadss_hill",
        2.0,
        "1",
        (1.0, 5.0),
        "symptoms",
        "Steepness of the occupancy-dissociation relation.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "sbp_emax_mmhg",
        33.0,
        "mmHg",
        (5.0, 80.0),
        "symptoms",
        "Maximal systolic blood-pressure rise (sympathomimetic effect of plasma ketamine).",
        "calibrated",
        "chosen with sbp_ec50 so that 0.5 mg/kg over 40 min raises SBP by 16 mmHg at 40 min "
        "(Yale 2024 chart review, Gen Hosp Psychiatry, doi:10.1016/j.genhosppsych.2024.07.001)",
    ),
    _p(
        "sbp_ec50_ng_per_ml",
        200.0,
        "ng/mL",
        (50.0, 1000.0),
        "symptoms",
        "Plasma ketamine giving half the maximal SBP rise.",
        "assumed",
        _TO_CALIBRATE,
    ),
    _p(
        "plasma_bdnf_baseline_ng_per_ml",
        9.5,
        "ng/mL",
        (2.0, 30.0),
        "biomarkers",
        "Typical baseline plasma BDNF in treatment-resistant depression.",
        "published",
        "PeerJ 2021 cohort: responders 11.0 (SD 6.2), non-responders 8.0 (SD 5.5) ng/mL; midpoint",
    ),
    _p(
        "plasma_bdnf_coupling",
        0.3,
        "1",
        (0.0, 1.0),
        "biomarkers",
        "Fraction of the relative brain BDNF rise seen in plasma.",
        "assumed",
        _TO_CALIBRATE,
    ),
    # ---------------------------------------------------------------- physical constants
    _p(
        "mw_ketamine_g_per_mol",
        237.73,
        "g/mol",
        (237.73, 237.73),
        "constants",
        "Molar mass of ketamine (free base).",
        "published",
        "PubChem CID 3821",
    ),
    _p(
        "mw_norketamine_g_per_mol",
        223.70,
        "g/mol",
        (223.70, 223.70),
        "constants",
        "Molar mass of norketamine (free base).",
        "published",
        "PubChem CID 123767",
    ),
)

REGISTRY: Mapping[str, Parameter] = MappingProxyType({p.name: p for p in _PARAMETERS})
"""Every model parameter by name; read-only."""


class ParameterSet(Mapping[str, float]):
    """One set of values for every registry parameter (immutable).

    >>> ps = ParameterSet.typical()
    >>> ps["k10_per_min"]
    0.0109
    >>> ps.replace(k10_per_min=0.012)["k10_per_min"]
    0.012
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, float] | None = None) -> None:
        merged = {name: p.default for name, p in REGISTRY.items()}
        for name, value in (values or {}).items():
            merged[name] = _validate_value(name, value)
        self._values = MappingProxyType(merged)

    @classmethod
    def typical(cls) -> ParameterSet:
        """The typical patient: the registry defaults with the shipped calibration's typical
        values (``ketadur calibrate``); the registry defaults alone when none is shipped."""
        from ketadur.population.typical import calibrated

        return cls(calibrated().typical)

    @classmethod
    def registry(cls) -> ParameterSet:
        """The registry defaults alone (uncalibrated)."""
        return cls()

    def replace(self, **changes: float) -> ParameterSet:
        """A new set with ``changes`` applied; each name and value is validated."""
        return ParameterSet({**self._values, **changes})

    def __getitem__(self, name: str) -> float:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        changed = {k: v for k, v in self._values.items() if v != REGISTRY[k].default}
        return f"ParameterSet({changed})"


def _validate_value(name: str, value: object) -> float:
    if name not in REGISTRY:
        raise KetadurInputError(f"params.{name}", "unknown parameter name", name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KetadurInputError(f"params.{name}", "must be a number", value)
    p = REGISTRY[name]
    v = float(value)
    if not math.isfinite(v) or not (p.lower <= v <= p.upper):
        raise KetadurInputError(
            f"params.{name}", f"must lie in the plausible range [{p.lower}, {p.upper}] {p.unit}", v
        )
    return v
