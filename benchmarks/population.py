"""Population-engine benchmark (a script that prints figures; not a test).

    python benchmarks/population.py [--patients 10000] [--days 365] [--seed 0]

(a) patient-years per second of the fast engine for N patients x D days of six-infusion induction
    followed by weekly maintenance, end to end (drawing the population, compiling schedules,
    building tables; the next chunk is drawn while one runs) and in the batch kernel alone;
    (b) the first M patients (``--roadrunner-patients``, default 1000) simulated by libRoadRunner
    from the exported SBML (``ketadur export-sbml``), the ratio of the two engines' patient-years
    per second (the fast engine's end to end), and the largest MADRS difference between them.
    CVODE runs at the fast engine's own tolerances by default (``--roadrunner-rtol``,
    ``--roadrunner-atol``), and both engines' largest MADRS difference from the reference engine
    on the first K patients (``--reference-patients``, default 10) is printed, so that the speeds
    are compared at a stated accuracy; (c) the process's peak memory (resident set). Patients'
    life events are switched off so that one exported SBML serves every patient (they are
    events, not parameters)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import platform
import resource
import sys
import time

import numpy as np
import pandas as pd

from ketadur.engine import population as engine
from ketadur.engine.fast import FastSettings
from ketadur.engine.population import simulate_population
from ketadur.population.generate import generate_population
from ketadur.population.source import DrawnPopulation
from ketadur.protocols.io import protocol_from_dict


def induction_weekly(days: float):
    """Six infusions in two weeks, then weekly infusions to the end (no entry criteria)."""
    drug = {
        "drug": "racemic_ketamine",
        "route": "iv",
        "dose_mg_per_kg": 0.5,
        "infusion_minutes": 40,
    }
    return protocol_from_dict(
        {
            "name": "benchmark_induction_weekly",
            "title": "Induction then weekly maintenance (benchmark)",
            "summary": "Six 0.5 mg/kg infusions over two weeks, then weekly infusions.",
            "evidence": "synthesised",
            "citations": ["benchmark design, no source"],
            "duration_days": days,
            "arms": [
                {
                    "name": "weekly",
                    "phases": [
                        {
                            "name": "induction",
                            "duration_days": 14,
                            "drugs": [{**drug, "schedule": {"days": [0, 2, 4, 7, 9, 11]}}],
                        },
                        {
                            "name": "maintenance",
                            "duration_days": days - 14,
                            "drugs": [
                                {**drug, "schedule": {"every_days": 7, "until_day": days - 15}}
                            ],
                        },
                    ],
                }
            ],
        }
    )


@dataclasses.dataclass(frozen=True)
class TimedDraws(DrawnPopulation):
    """A drawn population that adds up the seconds spent drawing (a chunk at a time, while the
    previous chunk runs)."""

    clock: list[float] = dataclasses.field(default_factory=list, compare=False)

    @property
    def seconds(self) -> float:
        return sum(self.clock)

    def blocks(self, size: int):
        drawn = super().blocks(size)
        while True:
            start = time.perf_counter()
            block = next(drawn, None)
            self.clock.append(time.perf_counter() - start)
            if block is None:
                return
            yield block


@contextlib.contextmanager
def timed_calls(module: object, name: str):
    """Replace ``module.name`` (a batch kernel) by a wrapper that adds up the seconds spent in its
    calls in the yielded list's one item; restored on exit."""
    spent = [0.0]
    inner = getattr(module, name)

    def timed(*args):
        start = time.perf_counter()
        inner(*args)
        spent[0] += time.perf_counter() - start

    setattr(module, name, timed)
    try:
        yield spent
    finally:
        setattr(module, name, inner)


@contextlib.contextmanager
def _quiet_native_output():
    """Silence what native code writes to the process's stdout and stderr: CVODE prints a
    warning at every event time that ``roadrunner.Logger`` does not filter (thousands of lines
    for a year of weekly doses)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def reference_madrs(protocol, patients, days: float) -> list[np.ndarray]:
    """Daily MADRS of ``patients`` by the reference engine (SciPy LSODA at its default rtol
    1e-7): the yardstick both engines' accuracy is measured against."""
    from ketadur.engine.reference import simulate
    from ketadur.protocols.schedule import fixed_regimen

    regimen = fixed_regimen(protocol, protocol.arms[0])
    out_days = np.arange(0.0, days + 1.0)
    return [
        simulate(regimen, p, t_end_days=days, output_days=out_days).table["madrs"].to_numpy()
        for p in patients
    ]


def roadrunner_run(protocol, population, args, fast: pd.DataFrame) -> dict[str, float]:
    """libRoadRunner on the exported SBML, with CVODE at ``--roadrunner-rtol``/``-atol``:
    patient-years/s, the largest MADRS difference from the fast engine's results ``fast``, how
    many patients CVODE could not finish, and the largest MADRS difference of each engine from
    the reference engine on the first ``--reference-patients`` (the accuracy the speeds are
    compared at)."""
    import roadrunner

    from ketadur.engine.sbml import patient_values, protocol_sbml
    from ketadur.population.table import patient_of, validate_population

    roadrunner.Logger.setLevel(roadrunner.Logger.LOG_ERROR)
    rr = roadrunner.RoadRunner(protocol_sbml(protocol))
    rr.integrator.relative_tolerance = args.roadrunner_rtol
    rr.integrator.absolute_tolerance = args.roadrunner_atol
    rr.integrator.setValue("maximum_num_steps", 1_000_000)
    rr.timeCourseSelections = ["time", "madrs"]
    times_h = np.arange(0.0, args.days + 1.0) * 24.0
    worst = 0.0
    start = time.perf_counter()
    table = validate_population(population.iloc[: args.roadrunner_patients])
    rows = [patient_of(row) for _, row in table.iterrows()]
    failed = 0
    theirs: dict[str, np.ndarray] = {}
    with _quiet_native_output():
        for patient in rows:
            for name, value in patient_values(patient).items():
                rr[name] = value
            rr.reset()
            try:
                theirs[patient.subject_id] = rr.simulate(times=times_h)[:, 1]
            except RuntimeError:  # CVODE gave up on this patient at these tolerances
                failed += 1
    elapsed = time.perf_counter() - start
    mine = {s: g["madrs"].to_numpy() for s, g in fast.groupby("subject_id", sort=False)}
    for subject, madrs in theirs.items():
        worst = max(worst, float(np.abs(madrs - mine[subject]).max()))
    checked = rows[: args.reference_patients]
    reference = reference_madrs(protocol, checked, args.days)
    fast_error = rr_error = 0.0
    for patient, ref in zip(checked, reference, strict=True):
        fast_error = max(fast_error, float(np.abs(mine[patient.subject_id] - ref).max()))
        if patient.subject_id in theirs:
            rr_error = max(rr_error, float(np.abs(theirs[patient.subject_id] - ref).max()))
    return {
        "rate": len(rows) * args.days / 365.25 / elapsed,
        "worst": worst,
        "failed": failed,
        "fast_error": fast_error,
        "rr_error": rr_error,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=365.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--roadrunner-patients", type=int, default=1000)
    parser.add_argument("--roadrunner-rtol", type=float, default=FastSettings().rtol)
    parser.add_argument("--roadrunner-atol", type=float, default=FastSettings().atol)
    parser.add_argument("--reference-patients", type=int, default=10)
    args = parser.parse_args()
    protocol = induction_weekly(args.days)
    settings = FastSettings()
    warm = generate_population("trd-adults", 2, seed=args.seed)
    next(simulate_population(protocol, warm, days=7))  # load the compiled kernels
    # Life events off: one SBML then serves every patient in (b), and both engines run alike.
    population = TimedDraws("trd-adults", args.patients, args.seed, life_events=False)
    with timed_calls(engine, "integrate_batch") as kernel:
        start = time.perf_counter()
        rows = 0
        first = []
        for chunk in simulate_population(
            protocol, population, outputs=("madrs",), chunk_size=args.chunk_size, settings=settings
        ):
            rows += len(chunk)
            assert np.isfinite(chunk["madrs"]).all()
            if sum(map(len, first)) < args.roadrunner_patients * (args.days + 1):
                first.append(chunk)
        end = time.perf_counter()
    years = args.patients * args.days / 365.25
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")
    import numba  # after ketadur, which chooses Numba's vector width before Numba loads

    wide = "-prefer-256-bit" in (numba.config.CPU_FEATURES or "")
    print(f"vector width: {'512-bit (AVX-512)' if wide else 'the compiler default'}")
    print(f"design: induction (6 infusions) + weekly maintenance, {args.days:g} days")
    print(f"patients: {args.patients}, tolerances rtol={settings.rtol:g} atol={settings.atol:g}")
    print(
        f"population drawn a chunk at a time while the previous chunk ran: "
        f"{population.seconds:.1f} s in all"
    )
    wall = end - start
    print(
        f"(a) fast engine: {years:.0f} patient-years in {wall:.1f} s = {years / wall:.1f} "
        f"patient-years/s ({rows} output rows), all included (drawing, schedules, tables); "
        f"in the batch kernel {kernel[0]:.1f} s = {years / kernel[0]:.1f} patient-years/s"
    )
    fast_rate = years / wall
    if args.roadrunner_patients > 0:
        head = population.part(0, min(args.roadrunner_patients, args.patients))
        table = pd.concat(head.blocks(args.roadrunner_patients), ignore_index=True)
        rr = roadrunner_run(protocol, table, args, pd.concat(first))
        print(
            f"(b) libRoadRunner (CVODE, rtol {args.roadrunner_rtol:g}, atol "
            f"{args.roadrunner_atol:g}): {rr['rate']:.2f} patient-years/s on "
            f"{args.roadrunner_patients} patients; fast engine / libRoadRunner = "
            f"{fast_rate / rr['rate']:.1f}x; max MADRS difference {rr['worst']:.2g} points; "
            f"{rr['failed']} patients stopped by CVODE"
        )
        print(
            f"    accuracy, largest MADRS difference from the reference engine on the first "
            f"{args.reference_patients} patients: fast engine {rr['fast_error']:.2g}, "
            f"libRoadRunner {rr['rr_error']:.2g} points"
        )
    print(f"(c) peak memory (resident): {peak_mib:.0f} MiB")
    print(pd.Series({"patient_years_per_s": fast_rate}).to_string())


if __name__ == "__main__":
    main()
