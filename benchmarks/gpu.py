"""GPU path of the population engine: agreement and speed (a script printing figures, not a test).

    python benchmarks/gpu.py [--patients 10000 100000] [--agreement-patients 200] [--save DIR]
    python benchmarks/gpu.py --compare DIR/gpu_outputs.parquet     (any machine; no GPU needed)

On a machine with a CUDA GPU and numba-cuda it prints (1) the kernel's compile time; (2) for every
library arm without adaptive elements, the largest difference between the GPU and the CPU fast
engine over daily MADRS and synaptic states of ``--agreement-patients`` patients, and with
``--save`` writes the GPU's outputs for the first ``--reference-patients`` of each arm; (3) the
population benchmark's design (``benchmarks/population.py``: six infusions, then weekly to day
365) for each ``--patients`` count on the GPU (whole pipeline and kernel alone; a count is
skipped when the last one's time projects past ``--max-seconds``), the first count again at each
of ``--block-sizes`` threads per block, and once on every CPU core; (4) peak memory.
``--compare`` checks saved GPU outputs against the reference engine (the issue's agreement
criterion), so that the slow reference engine runs off the GPU machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
from population import induction_weekly, timed_calls

import ketadur.engine.gpu as gpu_engine
import ketadur.engine.population as engine
from ketadur.engine.agreement import COMPARED, compare_with_reference, summarise
from ketadur.engine.population import is_adaptive, simulate_population
from ketadur.population.generate import generate_population
from ketadur.protocols.io import library_names, load_protocol

PATIENT_SEED = 0


def fixed_arms() -> list[tuple[str, str]]:
    """(protocol, arm) of every library arm the GPU runs (those without adaptive elements)."""
    return [
        (name, arm.name)
        for name in library_names()
        for arm in load_protocol(name).arms
        if not is_adaptive(arm)
    ]


def run(protocol, arm, population, device: str, outputs=COMPARED, chunk_size=2000) -> pd.DataFrame:
    chunks = simulate_population(
        protocol, population, arm=arm, outputs=outputs, device=device, chunk_size=chunk_size
    )
    return pd.concat(chunks, ignore_index=True)


def agreement(args) -> None:
    rows, saved = [], []
    population = generate_population("trd-adults", args.agreement_patients, seed=PATIENT_SEED)
    for name, arm in fixed_arms():
        protocol = load_protocol(name)
        gpu = run(protocol, arm, population, "gpu", chunk_size=args.agreement_patients)
        cpu = run(protocol, arm, population, "cpu", chunk_size=args.agreement_patients)
        worst_rel = 0.0
        for output in COMPARED:
            a, b = cpu[output].to_numpy(), gpu[output].to_numpy()
            worst_rel = max(worst_rel, float((np.abs(a - b) / np.maximum(np.abs(a), 1e-6)).max()))
        madrs = float(np.abs(cpu["madrs"] - gpu["madrs"]).max())
        rows.append({"protocol": name, "arm": arm, "madrs_abs": madrs, "rel": worst_rel})
        first = set(population["subject_id"].iloc[: args.reference_patients])
        saved.append(gpu[gpu["subject_id"].isin(first)].assign(protocol=name))
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.2e}"))
    print(
        f"(2) GPU vs CPU fast engine, {len(table)} arms x {args.agreement_patients} patients: "
        f"largest MADRS difference {table['madrs_abs'].max():.2e} points, largest relative "
        f"difference {table['rel'].max():.2e} (states above 1e-6)",
        flush=True,
    )
    if args.save is not None:
        path = Path(args.save) / "gpu_outputs.parquet"
        pd.concat(saved, ignore_index=True).to_parquet(path)
        print(f"GPU outputs of {args.reference_patients} patients per arm written to {path}")


def compare(path: Path, patients: int) -> None:
    """The saved GPU outputs against the reference engine, arm by arm."""
    saved = pd.read_parquet(path)
    population = generate_population("trd-adults", patients, seed=PATIENT_SEED)
    rows = []
    for (name, arm), gpu in saved.groupby(["protocol", "arm"], sort=False):
        result = compare_with_reference(load_protocol(name), arm, population, gpu)
        rows.append({"protocol": name, "arm": arm, **summarise(result)})
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    table = pd.DataFrame(rows)
    print(
        f"\nGPU vs reference engine: {table['all_within'].sum()} of {len(table)} arms within "
        f"tolerance; worst relative difference {table['worst_rel'].max():.2e}, worst MADRS "
        f"difference {table['worst_madrs_abs'].max():.2e} points"
    )


def throughput(n: int, device: str, chunk_size: int, days: float = 365.0) -> dict[str, float]:
    """Patient-years per second on the population benchmark's design, whole pipeline (from a
    drawn population to output tables) and, on the GPU, the kernel alone (transfers included)."""
    protocol = induction_weekly(days)
    drawing = time.perf_counter()
    population = generate_population("trd-adults", n, seed=PATIENT_SEED)
    population["life_events"] = ""  # as in benchmarks/population.py
    drawn_s = time.perf_counter() - drawing
    with timed_calls(engine, "integrate_batch_gpu") as kernel_s:
        start = time.perf_counter()
        rows = 0
        for chunk in simulate_population(
            protocol, population, outputs=("madrs",), device=device, chunk_size=chunk_size
        ):
            assert np.isfinite(chunk["madrs"]).all()
            rows += len(chunk)
        elapsed = time.perf_counter() - start
    years = n * days / 365.25
    timings = {"total_s": elapsed, "kernel_s": kernel_s[0], "drawn_s": drawn_s}
    return {"years": years, "rows": rows, **timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--cpu-patients", type=int, default=10_000)
    parser.add_argument("--agreement-patients", type=int, default=200)
    parser.add_argument("--reference-patients", type=int, default=10)
    parser.add_argument("--block-sizes", type=int, nargs="*", default=[32, 128])
    parser.add_argument("--max-seconds", type=float, default=150.0)
    parser.add_argument("--save", type=Path, default=None)
    parser.add_argument("--compare", type=Path, default=None)
    args = parser.parse_args()
    if args.compare is not None:
        compare(args.compare, args.reference_patients)
        return
    from numba import cuda

    gpu = cuda.get_current_device() if hasattr(cuda, "get_current_device") else None
    name = "simulated" if gpu is None else getattr(gpu, "name", b"?")
    print(f"GPU: {name.decode() if isinstance(name, bytes) else name}; CPU: {os.cpu_count()} "
          f"cores, {platform.machine()}, Python {platform.python_version()}")  # fmt: skip
    start = time.perf_counter()
    warm = generate_population("trd-adults", 2, seed=1)
    single = load_protocol("protocol1_single_infusion")
    next(simulate_population(single, warm, days=7))
    cpu_ready = time.perf_counter()
    next(simulate_population(single, warm, days=7, device="gpu"))
    print(
        f"(1) compiled: CPU engine {cpu_ready - start:.1f} s, GPU kernel "
        f"{time.perf_counter() - cpu_ready:.1f} s",
        flush=True,
    )
    if args.agreement_patients > 0:
        agreement(args)
    last = None
    for n in args.patients:
        if last is not None and last[1] * n / last[0] > args.max_seconds:
            print(f"(3) GPU, {n} patients: skipped (would take over {args.max_seconds:g} s)")
            continue
        r = throughput(n, "gpu", args.chunk_size)
        last = (n, r["total_s"])
        print(
            f"(3) GPU, {n} patients: {r['years']:.0f} patient-years in {r['total_s']:.1f} s = "
            f"{r['years'] / r['total_s']:.0f} patient-years/s; kernel and transfers "
            f"{r['kernel_s']:.1f} s = {r['years'] / r['kernel_s']:.0f} patient-years/s "
            f"({r['rows']} output rows; population drawn in {r['drawn_s']:.0f} s)",
            flush=True,
        )
    default_block = gpu_engine.THREADS_PER_BLOCK
    for block in args.block_sizes:  # the kernel alone, so the pipeline's overlap does not blur it
        gpu_engine.THREADS_PER_BLOCK = block
        r = throughput(args.patients[0], "gpu", args.chunk_size)
        print(f"    {block} threads per block: kernel and transfers {r['kernel_s']:.2f} s")
    gpu_engine.THREADS_PER_BLOCK = default_block
    if args.cpu_patients > 0:
        r = throughput(args.cpu_patients, "cpu", 2000)
        print(
            f"(3) CPU fast engine, {os.cpu_count()} cores, {args.cpu_patients} patients: "
            f"{r['years'] / r['total_s']:.0f} patient-years/s",
            flush=True,
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"(4) peak memory (resident set): {peak:.0f} MiB")


if __name__ == "__main__":
    main()
