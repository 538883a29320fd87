"""Fast engine vs reference engine on every library protocol arm (a script, not a test).

    python benchmarks/agreement.py [--patients 200] [--seed 0] [--workers 2]

Prints, per arm, the worst relative and absolute difference over daily MADRS and synaptic states
and whether every patient is within the tolerance (1e-3 relative, or 0.05 MADRS points). The
reference engine makes this slow (minutes per arm at 200 patients); ``--workers`` runs arms in
parallel processes (the results do not depend on it).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import pandas as pd

from ketadur.engine.agreement import compare_arm, summarise
from ketadur.population.generate import generate_population
from ketadur.protocols.io import library_names, load_protocol


def _arm(job: tuple[str, str, int, int]) -> dict:
    name, arm, patients, seed = job
    population = generate_population("trd-adults", patients, seed=seed)
    start = time.perf_counter()
    result = compare_arm(load_protocol(name), arm, population, seed=seed)
    return {
        "protocol": name,
        "arm": arm,
        **summarise(result),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    jobs = [
        (name, arm.name, args.patients, args.seed)
        for name in library_names()
        for arm in load_protocol(name).arms
    ]
    rows = []
    with ProcessPoolExecutor(args.workers) as pool:
        for row in pool.map(_arm, jobs):
            rows.append(row)
            print(pd.DataFrame([row]).to_string(index=False, header=len(rows) == 1), flush=True)
    table = pd.DataFrame(rows)
    print(f"\n{table['all_within'].sum()} of {len(table)} arms within tolerance")
    print(f"worst relative difference {table['worst_rel'].max():.2e}, worst MADRS difference "
          f"{table['worst_madrs_abs'].max():.2e} points")  # fmt: skip


if __name__ == "__main__":
    main()
