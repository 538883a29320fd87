"""The optional GPU path: its input checks, and its kernel's wiring under Numba's CUDA simulator.

CI has no GPU. The simulator runs the kernel as Python, one thread at a time, calling the same
compiled integrator as the CPU engine; so on it the GPU path must reproduce the CPU engine bit for
bit, which checks everything the GPU path adds (thread-to-patient mapping, each patient's slices
of life events, transfers, partly filled blocks). Agreement on a real GPU is measured by
``benchmarks/gpu.py`` (``docs/benchmarks.md``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from ketadur.engine import gpu
from ketadur.errors import KetadurInputError


def test_unknown_device_is_an_input_error() -> None:
    with pytest.raises(KetadurInputError, match='device: must be "cpu" or "gpu"'):
        gpu.check_device("tpu")


def test_gpu_without_a_gpu_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "gpu_available", lambda: False)
    with pytest.raises(KetadurInputError, match="no CUDA GPU is usable here"):
        gpu.check_device("gpu")
    assert gpu.check_device("cpu") == "cpu"


_SIMULATED = textwrap.dedent(
    """
    import numpy as np
    import pandas as pd

    from ketadur.engine import gpu
    from ketadur.engine.population import simulate_population
    from ketadur.population.generate import generate_population
    from ketadur.protocols.io import load_protocol

    pop = generate_population("trd-adults", 70, seed=5)  # 70: a second, partly filled block
    assert gpu.THREADS_PER_BLOCK < 70
    events = pop["life_events"].str.len().gt(0).sum()
    assert events > 0, "the population should carry life events"
    outputs = ("madrs", "potentiation", "consolidated", "plasma_ketamine_ng_per_ml")
    for name, arm, days in [("durability_comparison", "kap_cbt", 60),
                            ("pk_routes", "oral_0p5mg_per_kg", 3)]:
        protocol = load_protocol(name)
        runs = [
            pd.concat(simulate_population(protocol, pop, arm=arm, days=days, outputs=outputs,
                                          chunk_size=50, device=device))
            for device in ("cpu", "gpu")
        ]
        for column in outputs:
            a, b = (r[column].to_numpy() for r in runs)
            assert np.isfinite(a).all()
            assert np.array_equal(a, b), (name, column, np.abs(a - b).max())
    print("identical")
    """
)


def test_gpu_path_reproduces_the_cpu_engine_under_the_simulator() -> None:
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _SIMULATED], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("identical")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--device", "tpu"], 'device: must be "cpu" or "gpu"'),
        (["--device", "gpu", "--shards", "2"], "--device: a Dask run simulates on its workers"),
    ],
)
def test_cli_device_errors(tmp_path, refused, extra, message) -> None:
    out = tmp_path / "x.parquet"
    refused("simulate", "protocol1_single_infusion", "--out", str(out), *extra, message=message)
    assert not out.exists()


def test_pipelined_chunks_come_back_in_order() -> None:
    import random
    import time

    from ketadur.engine.population import _pipelined

    delays = random.Random(3).sample(range(20), 12)

    def make(start: int, part: str) -> tuple[int, str]:
        time.sleep(delays[start] / 1000.0)
        return start, part

    parts = [(k, f"part {k}") for k in range(12)]
    assert list(_pipelined(make, iter(parts), 3)) == parts


def test_cli_gpu_runs_an_adaptive_arm_on_the_cpu_and_says_so(tmp_path) -> None:
    out = tmp_path / "s.parquet"
    args = ["simulate", "sustain1", "--patients", "2", "--days", "30", "--out", str(out)]
    env = {"COLUMNS": "120", "PATH": "", "NUMBA_ENABLE_CUDASIM": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "ketadur.cli", *args, "--device", "gpu"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "simulated on the CPU" in " ".join(done.stderr.split())
    assert out.exists()
