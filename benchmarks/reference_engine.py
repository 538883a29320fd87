"""Time the reference engine on the demo regimens (a script that prints figures; not a test).

python benchmarks/reference_engine.py
"""

from __future__ import annotations

import platform
import time

from ketadur import simulate
from ketadur.demo import demo_regimens


def main() -> None:
    print(f"python {platform.python_version()} on {platform.machine()}")
    for regimen in demo_regimens():
        start = time.perf_counter()
        n = 5
        for _ in range(n):
            simulate(regimen, t_end_days=365.0)
        per_run = (time.perf_counter() - start) / n
        print(f"{regimen.name:32s} {per_run * 1000:8.1f} ms per patient-year")


if __name__ == "__main__":
    main()
