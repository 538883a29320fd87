"""Fast engine vs reference engine on every library protocol arm (a script, not a test).

    python benchmarks/agreement.py [--patients 200] [--seed 0]

Prints, per arm, the worst relative and absolute difference over daily MADRS and synaptic states
and whether every patient is within the tolerance (1e-3 relative, or 0.05 MADRS points). The
reference engine makes this slow (minutes per arm at 200 patients).
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from ketadur.engine.agreement import compare_arm
from ketadur.population.generate import generate_population
from ketadur.protocols.io import library_names, load_protocol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    population = generate_population("trd-adults", args.patients, seed=args.seed)
    rows = []
    for name in library_names():
        protocol = load_protocol(name)
        for arm in protocol.arms:
            start = time.perf_counter()
            result = compare_arm(protocol, arm.name, population, seed=args.seed)
            rows.append(
                {
                    "protocol": name,
                    "arm": arm.name,
                    "worst_rel": result["max_rel_diff"].max(),
                    "worst_madrs_abs": result.query("output == 'madrs'")["max_abs_diff"].max(),
                    "all_within": bool(result["within_tolerance"].all()),
                    "seconds": round(time.perf_counter() - start, 1),
                }
            )
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1))
    table = pd.DataFrame(rows)
    print(f"\n{table['all_within'].sum()} of {len(table)} arms within tolerance")


if __name__ == "__main__":
    main()
