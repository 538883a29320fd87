"""Calibration: population-level parameters fitted to the published calibration targets.

The free parameters are typical values (and three inter-individual CVs) of the synaptic and
symptom model, those the targets inform and no experiment fixes. Each candidate is scored by
simulating every calibration design on one fixed pool of virtual patients, observed with fixed
noise (common random numbers: only the parameters change between candidates), reducing each
target to its pool-level statistic, and comparing it with the published value under a Gaussian
likelihood whose variance is the published standard error squared, widened by the Monte Carlo
error of the pool (``1 + n_trial / n_pool``). Priors are normal on each parameter's log-scaled
plausible range, centred on the registry default.

Method (justified in ``docs/calibration.md``): CMA-ES, started from the best point of a Latin
hypercube over the ranges, finds the posterior mode, and a short small-step CMA-ES polishes
it; the likelihood is then tempered by the misfit at the mode (Birge ratio) so that the
posterior's width reflects the model's own error, as a Birge ratio scales the uncertainties of
a least-squares fit and not its values; adaptive multiple importance sampling (AMIS) from
Gaussians seeded by CMA-ES's covariance draws from that tempered posterior. The budget is a
number of model evaluations, so a result depends on seed and budget only, never on machine speed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property
from multiprocessing import get_context

import cma
import numba
import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, qmc

from ketadur import __version__
from ketadur.engine.population import is_adaptive
from ketadur.errors import KetadurInputError
from ketadur.evidence.phenomena import Phenomenon, typical_runs
from ketadur.evidence.predict import _replicate_value, per_subject, simulate_design
from ketadur.evidence.schema import Target, load_targets
from ketadur.model.parameters import REGISTRY, ParameterSet
from ketadur.population.presets import get_preset
from ketadur.population.typical import from_values
from ketadur.protocols.io import load_protocol

CALIBRATION_VERSION = "2026.12-3"
"""Version of the shipped calibration (bumped whenever it is regenerated)."""

SECONDS_PER_EVALUATION = 11.0
"""Nominal wall time of one objective evaluation with the default pool on the reference machine
(2 cores, two workers): converts ``--budget`` minutes into a fixed number of evaluations (327
for the default hour). Measured there on 2026-12-04: 225 evaluations in 2,432 s (10.8 s each)
once adaptive designs ran on three times the pool (5.5 s before, 3.6 s on 2026-11-22's faster
machine). The shipped 2026.12-1 came from 450 evaluations (``--budget 30`` when this constant
was 4 s; ``--budget 82.5`` now), with adaptive designs on the pool itself (before
``ADAPTIVE_POOL_FACTOR``). See ``docs/calibration.md``."""


DEFAULT_POOL = 100
"""Base pool of the objective: fixed-schedule designs simulate ``FIXED_POOL_FACTOR`` times it,
adaptive ones (SUSTAIN-1, Phillips 2019) ``ADAPTIVE_POOL_FACTOR`` times."""

ADAPTIVE_POOL_FACTOR = 3
"""Adaptive designs simulate this many times the pool. They report on a selected few: SUSTAIN-1
randomises only stable remitters, about a quarter of those who enter, so 100 entrants left about
13 patients per randomised arm, and the optimiser fitted their noise (calibration 2026.12-1:
esketamine-arm relapse 17 % on its own pool, 9 % on the validation's 400)."""

FIXED_POOL_FACTOR = 4
"""Fixed-schedule designs simulate this many times the pool: they are cheap (the batch engine),
and with 100 patients the Monte Carlo noise of a rate (about 5 points) let the optimiser fit the
pool rather than the trials (2026.11-3's first run: chi2 34 on its own pool, 81 on 400 others)."""

PRIOR_SD = 0.25
"""Prior SD of each free parameter in units of its log-scaled plausible range."""

MISSING_Z = 5.0
"""Standardised residual charged when a candidate gives no estimate (e.g. no hazard ratio)."""

POPSIZE = 8
"""CMA-ES candidates per generation (fixed, so results do not depend on the worker count)."""

INITIAL_DESIGN_FRACTION = 0.1
"""Share of the evaluations spent on the space-filling start (at least one generation)."""

CMA_FRACTION = 0.6
"""Share of the evaluations spent by the space-filling start and CMA-ES together."""

POLISH_FRACTION = 0.1
"""Share of the evaluations spent on the local polish (whole generations of ``POPSIZE``)."""

POLISH_SIGMA = 0.05
"""Initial step of the polish, in units of a parameter's log range (the prior SD is 0.25)."""

PROPOSAL_FLOOR_SD = 0.04
"""Smallest SD of an importance-sampling proposal, in units of a parameter's log range."""

METHOD = (
    "CMA-ES from the best point of a Latin hypercube to the posterior mode, a small-step "
    "CMA-ES polish of the mode, then adaptive multiple importance sampling (AMIS) seeded by "
    "the CMA-ES covariance from the posterior with its likelihood tempered by the Birge ratio"
)
"""The method in words, as written to the calibration file."""

LOG_KINDS = ("hazard_ratio", "median_time", "odds_ratio", "duration_ratio")
"""Quantities compared on the log scale (their intervals are multiplicative)."""


@dataclass(frozen=True)
class FreeParameter:
    """One free parameter: a typical value (``name``) or an IIV CV (``cv:name``) searched on
    the log scale between ``lower`` and ``upper``; ``centre`` is the prior's centre."""

    key: str
    lower: float
    upper: float
    centre: float
    why: str

    def to_value(self, u: float) -> float:
        """Value at position ``u`` in [0, 1] of the log-scaled range."""
        lo, hi = math.log(self.lower), math.log(self.upper)
        return float(math.exp(lo + min(max(u, 0.0), 1.0) * (hi - lo)))

    def to_unit(self, value: float) -> float:
        """Inverse of :meth:`to_value`."""
        lo, hi = math.log(self.lower), math.log(self.upper)
        return (math.log(value) - lo) / (hi - lo)


def _typical(name: str, why: str, lower: float | None = None) -> FreeParameter:
    p = REGISTRY[name]
    return FreeParameter(name, lower or p.lower, p.upper, p.default, why)


def _cv(name: str, why: str, upper: float = 1.5) -> FreeParameter:
    """The IIV CV of ``name``, searched from 0.05, centred on the default preset's CV."""
    return FreeParameter(f"cv:{name}", 0.05, upper, get_preset("trd-adults").iiv.cv[name], why)


def _preset_value(name: str, why: str, lower: float, upper: float) -> FreeParameter:
    """A preset field that calibration may set (:data:`~ketadur.population.typical.PRESET_VALUES`),
    centred on the default preset's value."""
    return FreeParameter(
        f"preset:{name}", lower, upper, float(getattr(get_preset("trd-adults"), name)), why
    )


FREE_PARAMETERS: tuple[FreeParameter, ...] = (
    # Searched from 0.35, not the registry's 0.05: below it one infusion drives the typical
    # patient's relief past 80 % of its ceiling, so a series could not deepen the response (seed
    # phenomenon; Phillips 2019: repeated infusions doubled the response rate), and the Met
    # allele's loss of BDNF release would not show. A fit over the whole range went to 0.096.
    _typical(
        "relief_half_max",
        "size of the antidepressant effect (24 h response, MADRS change)",
        lower=0.35,
    ),
    _typical("potentiation_formation_per_h", "speed of onset over the first day (24 h response)"),
    _typical(
        "relief_weight_acute",
        "the first hours' response (MADRS drop 2 h after an infusion)",
        lower=0.1,
    ),
    _typical("acute_half_life_h", "how the first hours' response gives way to the first day's"),
    _typical(
        "relief_hill",
        "depth of response among responders (remission against response, Han 2016, Salloum 2020)",
    ),
    _typical("potentiation_half_life_h", "fading of a single dose over days (72 h, day 7)"),
    _typical("structural_half_life_days", "durability after a series (time to relapse)"),
    # How long a patient's synaptic change lasts differs between patients: where it is short, the
    # response fades between maintenance doses (SUSTAIN-1's relapse on esketamine) and one dose's
    # responders at day 7 are those whose change lasts (Han 2016).
    _cv(
        "structural_half_life_days",
        "how long the response lasts, between patients (relapse on maintenance, day-7 rates)",
        upper=2.0,
    ),
    # searched from 0.5, not 0: the range is log-scaled (0 would be no protection at all,
    # which Ma 2025's ERK requirement for the sustained effect rules out)
    _typical(
        "erk_decay_protection",
        "how much sustained ERK slows structural decay (DUSP6 inhibition, Ma 2025)",
        lower=0.5,
    ),
    _typical(
        "stabilisation_per_day",
        "lasting change after months of treatment (SUSTAIN-1 placebo withdrawal)",
        lower=0.005,
    ),
    _typical(
        "stabilised_half_life_days",
        "how long months of treatment last once it stops (SUSTAIN-1 time to relapse on placebo)",
    ),
    # searched from 0.05, not 0 (log-scaled range; 0 would make CBT inert)
    _typical(
        "therapy_consolidation_gain",
        "gains that CBT sessions in the post-infusion window keep (relapse after ketamine with "
        "CBT, Wilkinson 2017)",
        lower=0.05,
    ),
    _cv(
        "relief_half_max",
        "heterogeneity of response between patients (response and remission rates)",
    ),
    _typical(
        "madrs_refractory_fraction",
        "symptoms no dose removes (response after a series of infusions)",
        lower=0.02,
    ),
    _cv(
        "madrs_refractory_fraction",
        "patients who do not respond to repeated dosing (response after a series, relapse "
        "on maintenance); the CV of the fraction's odds (logit-normal), up to a logit SD of 2.8",
        upper=50.0,
    ),
    _typical(
        "expectancy_gain_per_administration",
        "placebo response to an active placebo (midazolam 24-h MADRS change)",
        lower=0.02,
    ),
    _cv(
        "expectancy_gain_per_administration",
        "heterogeneity of the placebo response (midazolam 24-h response rate)",
    ),
    # The counter-regulation that large glutamate surges build: what makes a higher dose's
    # benefit shorter-lived (seed phenomenon). At its registry value the calibrated points of
    # 2026.12-1 and after kept 1 mg/kg's benefit longer than 0.5 mg/kg's.
    _typical(
        "homeostasis_build_per_h",
        "counter-regulation built by a large dose (a higher dose stronger but shorter-lived)",
        lower=0.002,
    ),
    # Life events are the model's only cause of relapse on continued dosing; their size moved
    # SUSTAIN-1's esketamine arm where no durability parameter did (docs/calibration.md). Their
    # size, not their rate: a larger mean scales the same exponential draws, so every patient
    # keeps its random numbers (common random numbers); searched from 2 to 30 points (the
    # largest event the generator draws).
    _preset_value(
        "life_event_mean_points",
        "size of stressful life events (relapse on continued esketamine, SUSTAIN-1)",
        lower=2.0,
        upper=30.0,
    ),
)
"""The default free parameters (typical values in registry units, four CVs and the life events'
size)."""


@dataclass(frozen=True)
class ScaleParameter:
    """A typical value that only scales one output, solved from the one target that reads that
    output instead of being searched: the model's statistic is proportional to it, so the value
    that reproduces the target is ``current * published / model`` (kept inside the registry's
    range). Searching it cost CMA-ES a dimension and still missed (first 2026.11-4 attempt: CADSS
    9.9 against 7.7, with the exact answer one multiplication away)."""

    key: str
    target: str

    def solve(self, current: float, model: float, published: float) -> float:
        """The value that moves ``model`` (obtained at ``current``) onto ``published``."""
        p = REGISTRY[self.key]
        return float(min(max(current * published / model, p.lower), p.upper))


SCALE_PARAMETERS: tuple[ScaleParameter, ...] = (
    # dissociation is proportional to its maximum and feeds nothing else
    ScaleParameter("cadss_emax_points", "vanschalkwyk2018_CADSS_mean"),
)
"""Parameters solved from one target each (not searched)."""


# ------------------------------------------------------------------------------ objective


def _published_se(target: Target) -> float:
    """Standard error of the published value, on the comparison scale."""
    how = target.how
    low, high = how.uncertainty.interval(how.value, how.unit)
    if low is None or high is None:
        raise KetadurInputError(f"targets.{target.id}", "calibration target without uncertainty")
    if how.quantity.kind in LOG_KINDS:
        return (math.log(high) - math.log(low)) / (2 * 1.959964)
    return (high - low) / (2 * 1.959964)


@dataclass(frozen=True)
class TargetFit:
    """One target at one candidate: the pool statistic, the published value, residual ``z``."""

    id: str
    model: float | None
    published: float
    z: float


@dataclass(frozen=True)
class Objective:
    """Scores candidates on ``targets`` with a fixed pool of ``pool`` patients and ``seed``.

    ``targets`` may be replaced (e.g. synthetic values for a recovery test); the score is the
    log-likelihood of the published values given the candidate (see the module docstring).
    ``phenomena`` (:mod:`ketadur.evidence.phenomena`) add a hinge residual each, computed on the
    candidate's typical patient."""

    targets: tuple[Target, ...]
    free: tuple[FreeParameter, ...] = FREE_PARAMETERS
    pool: int = DEFAULT_POOL
    seed: int = 0
    prior_sd: float = PRIOR_SD
    fixed_pool_factor: int = FIXED_POOL_FACTOR
    adaptive_pool_factor: int = ADAPTIVE_POOL_FACTOR
    phenomena: tuple[Phenomenon, ...] = ()
    scaled: tuple[ScaleParameter, ...] = ()

    def patients(self, protocol: str, arms: list[str]) -> int:
        """Pool size of one design: ``pool`` times ``fixed_pool_factor`` when no arm adapts,
        else times ``adaptive_pool_factor``."""
        proto = load_protocol(protocol)
        fixed = not any(is_adaptive(proto.arm(a)) for a in arms)
        return self.pool * (self.fixed_pool_factor if fixed else self.adaptive_pool_factor)

    @cached_property
    def _design_pools(self) -> dict[tuple[str, str], tuple[list[str], int]]:
        """Arms and pool size per design, worked out once (not at every evaluation)."""
        return {key: (arms, self.patients(key[0], arms)) for key, arms in self.designs().items()}

    def designs(self) -> dict[tuple[str, str], list[str]]:
        """Arms to simulate per (protocol, preset)."""
        out: dict[tuple[str, str], list[str]] = {}
        for t in self.targets:
            q = t.how.quantity
            arms = out.setdefault((t.how.protocol, t.how.population), [])
            arms += [a for a in (*q.arms, q.reference_arm) if a and a not in arms]
        return out

    def statistics(
        self, values: dict[str, float], only: Sequence[str] | None = None
    ) -> dict[str, tuple[float | None, int]]:
        """Each target's pool statistic and the number of pooled subjects it rests on (only the
        designs of the targets in ``only``, when given)."""
        params = from_values(values, "candidate")
        out: dict[str, tuple[float | None, int]] = {}
        wanted = {(t.how.protocol, t.how.population) for t in self.targets if t.id in (only or ())}
        for (protocol, preset), (arms, n) in self._design_pools.items():
            if only is not None and (protocol, preset) not in wanted:
                continue
            design = simulate_design(
                protocol, preset, arms, patients=n, seed=self.seed, parameters=params
            )
            for t in self.targets:
                if (t.how.protocol, t.how.population) != (protocol, preset):
                    continue
                rows = per_subject(design, t.how)
                chosen = rows[rows["selected"]]
                value = _replicate_value(t.how.quantity, chosen)
                if not np.isfinite(value) and t.how.quantity.kind == "median_time" and len(chosen):
                    # median not reached: the longest follow-up is a lower bound
                    value = float(chosen["t_days"].max()) / t.how.quantity.unit_days
                n_arms = len(t.how.quantity.arms) + bool(t.how.quantity.reference_arm)
                n = max(1, len(chosen) // n_arms)
                out[t.id] = (float(value) if np.isfinite(value) else None, n)
        return out

    def _published(self, target_id: str) -> float:
        return next(t.how.value for t in self.targets if t.id == target_id)

    def _solve(
        self, values: dict[str, float], stats: dict[str, tuple[float | None, int]]
    ) -> dict[str, float]:
        """``values`` with every scale parameter solved from its target's statistic in
        ``stats``; the statistics are rescaled in place to the solved values."""
        out = dict(values)
        for s in self.scaled:
            model, n = stats[s.target]
            current = values.get(s.key, REGISTRY[s.key].default)
            if model is None or model <= 0:
                continue  # nothing to scale: the target is charged as missing
            out[s.key] = s.solve(current, model, self._published(s.target))
            stats[s.target] = (model * out[s.key] / current, n)
        return out

    def solved(self, values: dict[str, float]) -> dict[str, float]:
        """``values`` with the scale parameters solved (simulates only their targets'
        designs)."""
        if not self.scaled:
            return dict(values)
        return self._solve(values, self.statistics(values, only=[s.target for s in self.scaled]))

    def fits(self, values: dict[str, float]) -> list[TargetFit]:
        """Standardised residual of every target at ``values`` (scale parameters solved)."""
        stats = self.statistics(values)
        self._solve(values, stats)
        fits = []
        for t in self.targets:
            how = t.how
            model, n_pool = stats[t.id]
            se = _published_se(t) * math.sqrt(1.0 + how.trial_patients / n_pool)
            if model is None or (how.quantity.kind in LOG_KINDS and model <= 0):
                z = MISSING_Z
            elif how.quantity.kind in LOG_KINDS:
                z = (math.log(model) - math.log(how.value)) / se
            else:
                z = (model - how.value) / se
            fits.append(TargetFit(t.id, model, how.value, float(z)))
        if self.phenomena:
            runs = typical_runs(ParameterSet(from_values(values, "candidate").typical))
            for p in self.phenomena:
                value = p.measure(runs)  # NaN: no response to measure it on
                z = p.z(value) if value > 0 else MISSING_Z
                shown = float(value) if math.isfinite(value) else None
                fits.append(TargetFit(f"phenomenon:{p.id}", shown, p.required, z))
        return fits

    def log_prior(self, u: np.ndarray) -> float:
        """Log prior density (up to a constant) at unit coordinates ``u``."""
        if np.any(u < 0) or np.any(u > 1):
            return -math.inf
        centre = np.array([f.to_unit(f.centre) for f in self.free])
        return float(-0.5 * np.sum(((u - centre) / self.prior_sd) ** 2))

    def values(self, u: np.ndarray) -> dict[str, float]:
        """Free-parameter values at unit coordinates ``u``."""
        return {f.key: f.to_value(float(x)) for f, x in zip(self.free, u, strict=True)}

    def synthetic(self, values: dict[str, float]) -> Objective:
        """The same objective with each target's published value replaced by the model's own
        statistic at ``values`` (uncertainties kept): a parameter-recovery problem whose
        answer is known."""
        stats = self.statistics(values)
        targets = []
        for t in self.targets:
            model, _ = stats[t.id]
            if model is None:
                raise KetadurInputError(f"targets.{t.id}", "no model estimate at these values")
            how = t.how.model_copy(update={"value": model})
            targets.append(t.model_copy(update={"how": how}))
        return replace(self, targets=tuple(targets))

    def chi2(self, u: np.ndarray) -> float:
        """Sum of squared standardised residuals at ``u`` (minus twice the log-likelihood)."""
        return float(sum(f.z**2 for f in self.fits(self.values(u))))


def _chi2(args: tuple[Objective, np.ndarray]) -> float:
    objective, u = args
    return objective.chi2(u)


# ------------------------------------------------------------------------------ the fit


@dataclass
class CalibrationResult:
    """A calibration: mode, weighted posterior draws and provenance (a JSON-ready document
    by :meth:`document`)."""

    free: tuple[FreeParameter, ...]
    point: dict[str, float]
    draws: list[dict[str, float]]
    fits: list[TargetFit]
    settings: dict
    diagnostics: dict
    history: list[dict] = field(default_factory=list)

    def document(self) -> dict:
        """The calibration file's content (schema in ``docs/calibration.md``)."""
        return {
            "version": CALIBRATION_VERSION,
            "ketadur_version": __version__,
            "method": METHOD,
            "settings": self.settings,
            "free_parameters": [
                {
                    "key": f.key,
                    "lower": f.lower,
                    "upper": f.upper,
                    "prior_centre": f.centre,
                    "prior_sd_log_range": self.settings["prior_sd"],
                    "informed_by": f.why,
                }
                for f in self.free
            ],
            "point": self.point,
            "posterior": _summary(self.draws),
            "draws": self.draws,
            "fits_at_point": [f.__dict__ for f in self.fits],
            "diagnostics": self.diagnostics,
        }


def _summary(draws: list[dict[str, float]]) -> dict:
    keys = list(draws[0])
    out = {}
    for k in keys:
        x = np.array([d[k] for d in draws])
        q05, q50, q95 = np.quantile(x, [0.05, 0.5, 0.95])
        out[k] = {"median": float(q50), "p05": float(q05), "p95": float(q95)}
    return out


def has_uncertainty(target: Target) -> bool:
    """Whether the target states (or derives) an uncertainty, without which it cannot be
    weighed in the likelihood (it is then validated but not fitted)."""
    how = target.how
    return None not in how.uncertainty.interval(how.value, how.unit)


def calibration_targets(only: Sequence[str] | None = None) -> tuple[Target, ...]:
    """The library's calibration targets that state an uncertainty (or those whose id is in
    ``only``)."""
    targets = [t for t in load_targets("calibration") if t.how is not None and has_uncertainty(t)]
    if only:
        unknown = sorted(set(only) - {t.id for t in targets})
        if unknown:
            raise KetadurInputError("targets", "not calibration targets", unknown)
        targets = [t for t in targets if t.id in set(only)]
    return tuple(targets)


def evaluations_for(budget_minutes: float) -> int:
    """Model evaluations a budget buys at the nominal cost (at least 2 CMA-ES generations)."""
    if not budget_minutes > 0:
        raise KetadurInputError("budget", "must be a positive number of minutes", budget_minutes)
    return max(16, int(budget_minutes * 60.0 / SECONDS_PER_EVALUATION))


def _one_thread_per_worker() -> None:
    """Each worker process evaluates on one thread: the workers already fill the cores, and
    Numba's parallel batches beside another busy process made an evaluation three times slower
    (measured: 31 s instead of 11 s)."""
    numba.set_num_threads(1)


class _Evaluator:
    """Evaluates batches of candidates, in worker processes when ``workers`` > 1."""

    def __init__(self, objective: Objective, workers: int) -> None:
        self.objective = objective
        self.pool = (
            ProcessPoolExecutor(
                workers, mp_context=get_context("spawn"), initializer=_one_thread_per_worker
            )
            if workers > 1
            else None
        )
        self.count = 0

    def __call__(self, batch: list[np.ndarray]) -> list[float]:
        args = [(self.objective, np.asarray(u, dtype=float)) for u in batch]
        out = list(self.pool.map(_chi2, args)) if self.pool else [_chi2(a) for a in args]
        self.count += len(batch)
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def calibrate(
    objective: Objective,
    *,
    evaluations: int,
    seed: int = 0,
    draws: int = 40,
    workers: int = 1,
    start: Mapping[str, float] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> CalibrationResult:
    """Fit ``objective``'s free parameters with ``evaluations`` model evaluations in all
    (about 60 % CMA-ES, 10 % a local polish, 30 % importance sampling); ``draws`` posterior
    draws are kept.

    With ``workers`` > 1 candidates are evaluated in spawned processes (a script calling this
    needs the ``if __name__ == "__main__":`` guard); the result does not depend on ``workers``.

    ``start`` (a value for every free parameter, e.g. an earlier calibration's point) joins the
    prior centre in the initial design, so that a calibration after a model change can begin
    where the last one ended; it is recorded in the file's settings."""
    if evaluations < 16:
        raise KetadurInputError("evaluations", "must be at least 16", evaluations)
    start_u = _start_position(objective.free, start)
    clock_s = time.perf_counter()
    d = len(objective.free)
    rng = np.random.default_rng([seed, 1])
    evaluate = _Evaluator(objective, workers)
    history: list[dict] = []
    seen_u: list[np.ndarray] = []
    seen_stage: list[str] = []  # the stage that proposed each of seen_u

    def log_post(u: np.ndarray, chi2: float, temper: float = 1.0) -> float:
        return -0.5 * chi2 / temper + objective.log_prior(u)

    try:
        # ---- a space-filling start: the posterior can have more than one basin (a smaller
        # effect that lasts longer, or a larger one that fades fast), and CMA-ES from the prior
        # centre alone can slide into the wrong one; it starts from the best of a Latin
        # hypercube and the prior centre
        n_start = POPSIZE * max(1, int(INITIAL_DESIGN_FRACTION * evaluations) // POPSIZE)
        design = [np.array([f.to_unit(f.centre) for f in objective.free])]
        if start_u is not None:
            design.append(start_u)
        design += list(qmc.LatinHypercube(d, seed=rng).random(n_start - len(design)))
        chi2s: list[float] = []
        for i in range(0, len(design), POPSIZE):  # a generation at a time, to show progress
            chi2s += evaluate(design[i : i + POPSIZE])
            if progress:
                progress("initial design", evaluate.count, evaluations)
        seen_u += design
        seen_stage += ["design"] * len(design)
        history.append({"stage": "design", "evaluations": evaluate.count, "best_chi2": min(chi2s)})
        x0 = design[int(np.argmax([log_post(u, c) for u, c in zip(design, chi2s, strict=True)]))]
        # ---- CMA-ES on minus the log posterior, in unit coordinates
        cma_budget = int(CMA_FRACTION * evaluations)
        es = _strategy(x0, 0.15, rng, maxfevals=cma_budget)
        while not es.stop() and evaluate.count + POPSIZE <= cma_budget:
            us = es.ask()
            c = evaluate(us)
            es.tell(us, [-log_post(np.asarray(u), ci) for u, ci in zip(us, c, strict=True)])
            seen_u += [np.asarray(u) for u in us]
            seen_stage += ["cma"] * len(us)
            chi2s += c
            history.append({"stage": "cma", "evaluations": evaluate.count, "best_chi2": min(chi2s)})
            if progress:
                progress("cma-es", evaluate.count, evaluations)
        # ---- polish: a fresh, small-step CMA-ES from the best point so far. The main run ends
        # with a step size set for the whole space, and in fifteen dimensions its best sample
        # was still short of the mode along flat axes (2026.11-4: the expectancy CV)
        seen_post: list[float] = [log_post(u, c) for u, c in zip(seen_u, chi2s, strict=True)]
        polish_budget = POPSIZE * int(POLISH_FRACTION * evaluations / POPSIZE)
        if polish_budget:
            polish = _strategy(seen_u[int(np.argmax(seen_post))], POLISH_SIGMA, rng)
            for _ in range(polish_budget // POPSIZE):
                us = [np.asarray(u) for u in polish.ask()]
                c = evaluate(us)
                post = [log_post(u, ci) for u, ci in zip(us, c, strict=True)]
                polish.tell(us, [-p for p in post])
                seen_u += us
                seen_stage += ["polish"] * len(us)
                seen_post += post
                chi2s += c
                history.append({"stage": "polish", "evaluations": evaluate.count,
                                "best_log_posterior": max(seen_post)})  # fmt: skip
                if progress:
                    progress("polish", evaluate.count, evaluations)
        # ---- the point: the posterior mode, untempered. Tempering widens the posterior for
        # the draws below; applied to the point as well, it would only pull it towards the
        # prior centre by the misfit of targets the model cannot reach
        best = int(np.argmax(seen_post))
        chi2_min = chi2s[best]
        n_targets = len(objective.targets) + len(objective.phenomena)
        temper = max(1.0, chi2_min / max(1, n_targets - d))
        # ---- AMIS: Gaussian proposals, each from the weighted samples so far
        mean = seen_u[best]
        # CMA-ES's covariance, doubled in SD, with a floor: a defensive width so that a ridge
        # of the posterior beyond CMA-ES's last steps is still sampled
        cov = es.sigma**2 * np.asarray(es.C) * 4.0 + np.eye(d) * PROPOSAL_FLOOR_SD**2
        rounds = 3
        per_round = max(2, (evaluations - evaluate.count) // rounds)
        proposals: list[tuple[np.ndarray, np.ndarray, int]] = []
        is_u: list[np.ndarray] = []
        is_chi2: list[float] = []
        is_post: list[float] = []
        for _ in range(rounds):
            batch = []
            while len(batch) < per_round:
                u = rng.multivariate_normal(mean, cov)
                if np.all((u >= 0) & (u <= 1)):
                    batch.append(u)
            c = evaluate(batch)
            proposals.append((mean, cov, per_round))
            is_u += batch
            is_chi2 += c
            is_post += [log_post(u, ci, temper) for u, ci in zip(batch, c, strict=True)]
            w = _truncated_weights(_amis_log_weights(np.array(is_u), np.array(is_post), proposals))
            mean = np.average(np.array(is_u), axis=0, weights=w)
            centred = np.array(is_u) - mean
            cov = (centred * w[:, None]).T @ centred * 1.5**2 + np.eye(d) * PROPOSAL_FLOOR_SD**2
            history.append({"stage": "amis", "evaluations": evaluate.count,
                            "ess": float(1.0 / np.sum(w**2))})  # fmt: skip
            if progress:
                progress("importance sampling", evaluate.count, evaluations)
        # ---- draws: systematic resampling of the weighted samples, in a random order (it
        # returns them sorted by sample, and users take the first K: ``validate
        # --parameter-draws``, trial replicates); point: the best seen, untempered
        positions = (rng.random() + np.arange(draws)) / draws
        picked = np.minimum(np.searchsorted(np.cumsum(w), positions), len(w) - 1)
        picked = picked[draw_order(seed, draws)]
        all_u = seen_u + is_u
        all_post = seen_post + [log_post(u, c) for u, c in zip(is_u, is_chi2, strict=True)]
        top = int(np.argmax(all_post))
        point_u = all_u[top]
        point_stage = (seen_stage + ["amis"] * len(is_u))[top]
    finally:
        evaluate.close()
    point = objective.solved(objective.values(point_u))
    return CalibrationResult(
        free=objective.free,
        point=point,
        draws=[objective.solved(objective.values(is_u[i])) for i in picked],
        fits=objective.fits(point),
        settings={
            "seed": seed,
            "evaluations": evaluations,
            "pool": objective.pool,
            "fixed_pool_factor": objective.fixed_pool_factor,
            "adaptive_pool_factor": objective.adaptive_pool_factor,
            "pool_seed": objective.seed,
            "prior_sd": objective.prior_sd,
            "start": None
            if start is None
            else {f.key: float(start[f.key]) for f in objective.free},
            "targets": [t.id for t in objective.targets],
            "phenomena": [p.id for p in objective.phenomena],
            "solved": {s.key: s.target for s in objective.scaled},
        },
        diagnostics={
            "chi2_at_mode_untempered": chi2_min,
            "targets": n_targets,
            "free_parameters": d,
            "birge_temper": temper,
            "point_found_by": point_stage,
            "importance_ess": float(1.0 / np.sum(w**2)),
            "importance_samples": len(is_u),
            "runtime_s": time.perf_counter() - clock_s,
        },
        history=history,
    )


def _strategy(
    x0: np.ndarray, sigma: float, rng: np.random.Generator, **options: float
) -> cma.CMAEvolutionStrategy:
    """A CMA-ES in unit coordinates from ``x0`` with step ``sigma``, ``POPSIZE`` candidates per
    generation, seeded from ``rng``, silent."""
    seed = int(rng.integers(1, 2**31 - 1))
    settings = {"bounds": [0.0, 1.0], "popsize": POPSIZE, "seed": seed, "verbose": -9}
    return cma.CMAEvolutionStrategy(list(x0), sigma, {**settings, **options})


def _start_position(
    free: tuple[FreeParameter, ...], start: Mapping[str, float] | None
) -> np.ndarray | None:
    """``start`` in unit coordinates, after checking it gives every free parameter a value
    inside its searched range."""
    if start is None:
        return None
    missing = [f.key for f in free if f.key not in start]
    if missing:
        raise KetadurInputError("start", "has no value for these free parameters", missing)
    for f in free:
        value = start[f.key]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not (number and f.lower <= value <= f.upper):
            raise KetadurInputError(
                f"start.{f.key}",
                f"must be a number in the searched range [{f.lower:g}, {f.upper:g}]",
                value,
            )
    return np.array([f.to_unit(float(start[f.key])) for f in free])


def draw_order(seed: int, draws: int) -> np.ndarray:
    """The order in which the resampled draws are stored: a permutation from its own stream
    (``[seed, 2]``), so that any first K draws are a random subset of the posterior draws."""
    return np.random.default_rng([seed, 2]).permutation(draws)


def _truncated_weights(log_w: np.ndarray) -> np.ndarray:
    """Normalised importance weights, each capped at sqrt(N) times their mean (truncated
    importance sampling, Ionides 2008, J Comput Graph Stat 17:295) so that one sample in the
    proposal's tail cannot carry the posterior."""
    w = np.exp(log_w - log_w.max())
    w = np.minimum(w, w.mean() * math.sqrt(len(w)))
    return w / w.sum()


def _amis_log_weights(
    u: np.ndarray, log_post: np.ndarray, proposals: list[tuple[np.ndarray, np.ndarray, int]]
) -> np.ndarray:
    """Deterministic-mixture weights: posterior over the mixture of all proposals so far."""
    total = sum(n for _, _, n in proposals)
    logq = logsumexp(
        [math.log(n / total) + multivariate_normal(m, c).logpdf(u) for m, c, n in proposals],
        axis=0,
    )
    return log_post - logq
