"""In-silico trials: a protocol's arms on one virtual population, observed as a study would be.

:func:`simulate_truth` gives the model's values at each arm's visits and what was given (fixed arms
batched on the fast population engine, adaptive arms patient by patient through the protocol
runner, which applies entry criteria and rules). :func:`run_trial` observes them
(:mod:`ketadur.trials.observe`) and computes the endpoints of :mod:`ketadur.trials.endpoints` and
:mod:`ketadur.trials.survival` per arm, pooled and, with ``replicates`` > 1, across replicate trials
of ``patients`` each (patients ``r * n .. (r + 1) * n - 1`` form replicate ``r``).

Every arm sees the same patients (common random numbers): differences between arms are the
protocol's, not the sampling's. Same seed, same result, bit for bit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ketadur import __version__
from ketadur.engine.population import adaptive_runs, is_adaptive, simulate_population
from ketadur.errors import KetadurInputError
from ketadur.model.patient import TYPICAL_PATIENT
from ketadur.population.table import validate_population
from ketadur.protocols.schedule import compile_protocol
from ketadur.protocols.schema import MEASURE_OUTPUT, EndpointDefinition, Protocol
from ketadur.trials import endpoints as ep
from ketadur.trials import survival as sv
from ketadur.trials.observe import (
    EVENT_COLUMNS,
    TYPICAL_OBSERVATION,
    VISIT_COLUMNS,
    ObservationModel,
    Observations,
    Rater,
    observe,
)

DEFAULT_ENDPOINTS: dict[str, EndpointDefinition] = {
    "response": EndpointDefinition(
        description=">= 50 % MADRS improvement from baseline", improvement_percent_at_least=50
    ),
    "remission": EndpointDefinition(description="MADRS <= 10", madrs_at_most=10),
    "relapse": EndpointDefinition(
        description="improvement below 50 % on two consecutive visits (loss of response)",
        improvement_percent_below=50,
        at_least=2,
        of_last=2,
    ),
}
"""Used where a protocol does not define its own (response and remission as in most ketamine
trials; relapse as loss of response on two consecutive visits, e.g. Murrough JW et al. Biol
Psychiatry 2013;74:250-256)."""

MEASURES = {m: MEASURE_OUTPUT[m] for m in ("madrs", "plasma_bdnf", "plasma_ketamine")}
"""Protocol assessment measures that become visit rows, and the model output each reads."""


@dataclass(frozen=True)
class TrialSettings:
    """What to report: days for response/remission rates, the window in which a patient counts
    as a responder (relapse is then timed from the first response visit), the days at which
    relapse fractions are read, and the reference arm for hazard ratios (default: the first)."""

    rate_days: tuple[float, ...] = (1.0, 7.0, 28.0)
    responder_window_days: tuple[float, float] = (0.5, 28.0)
    relapse_days: tuple[float, ...] = (56.0, 182.0)
    reference_arm: str | None = None


@dataclass
class TrialResult:
    """Observations, per-arm endpoints (pooled over all patients) and replicate spreads."""

    protocol: Protocol
    seed: int
    n_patients: int
    replicates: int
    observations: Observations
    truth: Observations
    endpoints: dict[str, dict]
    time_to_relapse: pd.DataFrame
    settings: TrialSettings
    runtime_s: float = 0.0
    provenance: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The JSON document of ``ketadur trial --json`` (schema in docs/trials.md)."""
        return {
            "protocol": self.protocol.name,
            "seed": self.seed,
            "patients": self.n_patients,
            "replicates": self.replicates,
            "ketadur_version": __version__,
            "arms": [{"name": arm, **values} for arm, values in self.endpoints.items()],
        }


def _fixed_truth(protocol, arm, df, seed, progress) -> tuple[pd.DataFrame, pd.DataFrame]:
    # A fixed arm's visit times and regimen are the same for every patient.
    compiled = compile_protocol(protocol, TYPICAL_PATIENT, arm)
    table = compiled.table()
    visit_rows = table[(table["kind"] == "assessment") & table["detail"].isin(list(MEASURES))]
    plan = visit_rows[["t_days", "detail"]].drop_duplicates().reset_index(drop=True)
    days = sorted(set(plan["t_days"].round(9)))
    outputs = tuple(dict.fromkeys(MEASURES[m] for m in plan["detail"]))
    wide = pd.concat(
        simulate_population(
            protocol, df, arm=arm, outputs=outputs, output_days=days, seed=seed,
            progress=progress,
        )
    )  # fmt: skip
    wide["t_days"] = wide["t_days"].round(9)
    visits = []
    for measure, output in MEASURES.items():
        at = plan.loc[plan["detail"] == measure, "t_days"].round(9)
        if at.empty:
            continue
        part = wide[wide["t_days"].isin(set(at))][["subject_id", "t_days", output]]
        visits.append(part.rename(columns={output: "value"}).assign(measure=measure))
    v = pd.concat(visits, ignore_index=True).assign(arm=arm)
    regimen = compiled.regimen()
    weight = df.set_index("subject_id")["weight_kg"]
    ev = []
    for dose in regimen.doses:
        amount = np.array([dose.amount_mg(w) for w in weight.to_numpy()])
        ev.append(
            pd.DataFrame(
                {"subject_id": weight.index, "t_days": dose.day, "kind": "dose",
                 "drug": dose.drug, "route": dose.route, "amount_mg": amount}
            )
        )  # fmt: skip
    for s in regimen.sessions:
        ev.append(
            pd.DataFrame(
                {"subject_id": weight.index, "t_days": s.day, "kind": "session",
                 "drug": s.kind, "route": "", "amount_mg": 0.0}
            )
        )  # fmt: skip
    for plan in compiled.plans:
        ev.append(
            pd.DataFrame(
                {"subject_id": weight.index, "t_days": plan.start_day, "kind": "phase",
                 "drug": plan.phase.name, "route": "", "amount_mg": 0.0}
            )
        )  # fmt: skip
    events = pd.concat(ev, ignore_index=True).assign(arm=arm) if ev else _empty_events()
    return v[list(VISIT_COLUMNS)], events[list(EVENT_COLUMNS)]


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float if c in ("t_days", "amount_mg") else object)
                         for c in EVENT_COLUMNS})  # fmt: skip


_GIVEN = {"infusion_start": "dose", "bolus": "dose", "placebo": "dose", "session": "session"}


def _adaptive_truth(
    protocol, arm, df, seed, progress, observation
) -> tuple[pd.DataFrame, pd.DataFrame]:
    visits, events = [], []
    runs = adaptive_runs(
        protocol, protocol.arm(arm), df, seed=seed, output_step_hours=24.0,
        dense_after_doses=False,
        rater=None if observation is None else (lambda k: Rater(observation, seed, k)),
    )  # fmt: skip
    for k, (row, run) in enumerate(runs):
        a = run.assessments
        a = a[a["measure"].isin(list(MEASURES))]
        visits.append(a[["t_days", "measure", "value"]].assign(subject_id=row["subject_id"]))
        e = run.events_table()
        decided = run.decisions[run.decisions["decision"].isin(["entered", "booster"])]
        events.append(
            pd.DataFrame(
                {"subject_id": row["subject_id"], "t_days": decided["t_days"].to_numpy(),
                 "kind": np.where(decided["decision"] == "entered", "phase", "booster"),
                 "drug": np.where(decided["decision"] == "entered", decided["detail"], ""),
                 "route": "", "amount_mg": 0.0}
            )
        )  # fmt: skip
        e = e[e["kind"].isin(list(_GIVEN))]
        events.append(
            pd.DataFrame(
                {"subject_id": row["subject_id"], "t_days": e["t_days"].to_numpy(),
                 "kind": e["kind"].map(_GIVEN).to_numpy(),
                 "drug": np.where(e["kind"] == "session", e["detail"], e["drug"]),
                 "route": e["route"].to_numpy(), "amount_mg": e["amount_mg"].to_numpy()}
            )
        )  # fmt: skip
        if progress is not None:
            progress(k + 1)
    v = pd.concat(visits, ignore_index=True).assign(arm=arm)
    ev = pd.concat(events, ignore_index=True).assign(arm=arm) if events else _empty_events()
    return v[list(VISIT_COLUMNS)], ev[list(EVENT_COLUMNS)]


def simulate_truth(
    protocol: Protocol,
    population: pd.DataFrame,
    *,
    arms: Sequence[str] | None = None,
    seed: int = 0,
    observation: ObservationModel | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> Observations:
    """Model values at every arm's MADRS and BDNF visits, and what each patient was given.

    Adaptive arms decide (boosters, entry criteria, intervals) on the MADRS ratings that
    :func:`~ketadur.trials.observe.observe` with ``observation`` and ``seed`` will record, patient
    ``k`` being the k-th row of ``population``; with ``observation`` None, on the model's values."""
    df = validate_population(population)
    names = list(arms) if arms is not None else [a.name for a in protocol.arms]
    visits, events = [], []
    for name in names:
        arm = protocol.arm(name)
        step = None if progress is None else (lambda done, n=name: progress(n, done))
        if is_adaptive(arm):
            v, e = _adaptive_truth(protocol, name, df, seed, step, observation)
        else:
            v, e = _fixed_truth(protocol, name, df, seed, step)
        visits.append(v)
        events.append(e)
    return Observations(pd.concat(visits, ignore_index=True), pd.concat(events, ignore_index=True))


def endpoint_definitions(protocol: Protocol) -> dict[str, EndpointDefinition]:
    """The protocol's own endpoint definitions over :data:`DEFAULT_ENDPOINTS`."""
    return {**DEFAULT_ENDPOINTS, **protocol.endpoints}


def responders(
    obs: Observations, response: EndpointDefinition, window: tuple[float, float]
) -> pd.DataFrame:
    """Subjects meeting ``response`` in ``window``: arm, subject_id, from_day (first response)."""
    v = ep.visits_met(obs, response)
    inside = v[(v["t_days"] >= window[0]) & (v["t_days"] <= window[1]) & v["met"]]
    first = inside.groupby(["arm", "subject_id"], sort=False)["t_days"].min()
    return first.rename("from_day").reset_index()


def arm_endpoints(
    obs: Observations, defs: dict[str, EndpointDefinition], settings: TrialSettings
) -> tuple[dict[str, dict], pd.DataFrame]:
    """Endpoints of every arm (JSON-ready) and the relapse times among responders."""
    days = list(settings.rate_days)
    resp = ep.rate_by_visit(obs, defs["response"], days)
    remi = ep.rate_by_visit(obs, defs["remission"], days)
    who = responders(obs, defs["response"], settings.responder_window_days)
    tte = ep.time_to_event(obs, defs["relapse"], subjects=who)
    expo = ep.exposure(obs).set_index("arm")
    reference = settings.reference_arm or (obs.arms[0] if obs.arms else None)
    out: dict[str, dict] = {}
    for arm in obs.arms:

        def series(table: pd.DataFrame, arm: str = arm) -> dict[str, float | None]:
            t = table[table["arm"] == arm]
            return {f"{d:g}": (None if np.isnan(r) else float(r))
                    for d, r in zip(t["t_days"], t["rate"], strict=True)}  # fmt: skip

        n_resp = int((who["arm"] == arm).sum())
        relapse = {f"{d:g}": sv.event_fraction_by(tte, arm, d) for d in settings.relapse_days}
        out[arm] = {
            "n": int(expo.loc[arm, "n"]),
            "endpoints": {
                "response_rate": series(resp),
                "remission_rate": series(remi),
                "responders": n_resp,
                "relapse_rate": relapse,
                "relapse_rate_interval_censored": {
                    f"{d:g}": sv.interval_event_fraction_by(tte, arm, d)
                    for d in settings.relapse_days
                },
                "median_days_to_relapse": sv.median_time(tte, arm),
                "hazard_ratio_vs": (
                    {reference: sv.hazard_ratio(tte, arm, reference)}
                    if reference and arm != reference
                    else {}
                ),
                "logrank_vs": (
                    {reference: sv.logrank(tte, arm, reference)}
                    if reference and arm != reference
                    else {}
                ),
                "infusions_per_patient": float(expo.loc[arm, "infusions_per_patient"]),
                "ketamine_mg_per_patient": float(expo.loc[arm, "ketamine_mg_per_patient"]),
                "sessions_per_patient": float(expo.loc[arm, "sessions_per_patient"]),
                "visits_per_patient": float(expo.loc[arm, "visits_per_patient"]),
            },
        }
    return out, tte


def _subset(obs: Observations, subjects: set[str]) -> Observations:
    return Observations(
        obs.visits[obs.visits["subject_id"].isin(subjects)].reset_index(drop=True),
        obs.events[obs.events["subject_id"].isin(subjects)].reset_index(drop=True),
    )


def _spread(values: list[float | None]) -> dict[str, float | None]:
    x = np.array([v for v in values if v is not None], dtype=float)
    if not len(x):
        return {"median": None, "p05": None, "p95": None}
    q = np.quantile(x, [0.5, 0.05, 0.95])
    return {"median": float(q[0]), "p05": float(q[1]), "p95": float(q[2])}


def run_trial(
    protocol: Protocol,
    population: pd.DataFrame,
    *,
    arms: Sequence[str] | None = None,
    seed: int = 0,
    replicates: int = 1,
    observation: ObservationModel = TYPICAL_OBSERVATION,
    settings: TrialSettings = TrialSettings(),
    progress: Callable[[str, int], None] | None = None,
) -> TrialResult:
    """Simulate, observe and analyse a trial of ``protocol`` on ``population``.

    With ``replicates`` = R > 1 the population is split into R consecutive trials of equal size
    and each endpoint also gets its spread across them (median, 5th and 95th percentile)."""
    if replicates < 1:
        raise KetadurInputError("replicates", "must be a positive integer", replicates)
    if len(population) < replicates:
        raise KetadurInputError(
            "replicates",
            f"needs at least one patient per replicate ({len(population)})",
            replicates,
        )
    start = time.perf_counter()
    truth = simulate_truth(
        protocol, population, arms=arms, seed=seed, observation=observation, progress=progress
    )
    ids = list(dict.fromkeys(population["subject_id"]))
    observed = observe(
        truth, observation, seed=seed, subject_index={s: i for i, s in enumerate(ids)}
    )
    defs = endpoint_definitions(protocol)
    pooled, tte = arm_endpoints(observed, defs, settings)
    if replicates > 1:
        n = len(ids) // replicates
        per = [
            arm_endpoints(_subset(observed, set(ids[r * n : (r + 1) * n])), defs, settings)[0]
            for r in range(replicates)
        ]
        for arm, values in pooled.items():
            e = values["endpoints"]
            values["replicate_spread"] = {
                key: {d: _spread([p[arm]["endpoints"][key][d] for p in per]) for d in e[key]}
                for key in ("response_rate", "remission_rate", "relapse_rate")
            }
    return TrialResult(
        protocol=protocol,
        seed=seed,
        n_patients=len(ids),
        replicates=replicates,
        observations=observed,
        truth=truth,
        endpoints=pooled,
        time_to_relapse=tte,
        settings=settings,
        runtime_s=time.perf_counter() - start,
        provenance={"observation": observation.model_dump(), "ketadur_version": __version__},
    )
