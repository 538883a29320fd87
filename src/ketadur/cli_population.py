"""``ketadur population`` and the population mode of ``ketadur simulate``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ketadur.cli_common import (
    DISCLAIMER,
    check_count,
    check_seed,
    console,
    err_console,
    progress_bar,
)
from ketadur.errors import KetadurInputError

_DEFAULT_OUT = Path("population.parquet")
_WRITE_BLOCK = 10_000
"""Patients drawn and written at a time by ``ketadur population`` (about 11 MiB of table)."""


def population_cmd(preset: str, patients: int, seed: int, out: Path) -> None:
    """Draw a virtual population and write it (one row per patient), a block at a time."""
    from ketadur.engine.population import write_chunks
    from ketadur.population.generate import generate_population
    from ketadur.population.presets import get_preset
    from ketadur.population.table import check_table_path

    get_preset(preset)
    check_count(patients, "--patients")
    check_seed(seed)
    check_table_path(out, "--out")
    blocks = (
        generate_population(preset, min(_WRITE_BLOCK, patients - first), seed, start=first)
        for first in range(0, patients, _WRITE_BLOCK)
    )
    write_chunks(blocks, out)
    console.print(f"{patients} patients of preset {preset} (seed {seed}) written to {out}")


def population_table(population: str, patients: int | None, seed: int):
    """The population of ``--population`` as one table in memory (see
    :func:`population_source`)."""
    from ketadur.population.generate import generate_population
    from ketadur.population.source import FilePopulation
    from ketadur.population.table import read_population

    source = population_source(population, patients, seed)
    if isinstance(source, FilePopulation):
        return read_population(source.path).iloc[: source.limit]
    return generate_population(source.preset, source.n_patients, seed)


def population_source(population: str, patients: int | None, seed: int):
    """``--population`` as a :class:`~ketadur.population.source.PopulationSource`: a table file
    (first ``patients`` rows if given) or a preset drawn with ``seed`` (1000 patients unless
    ``patients`` is given), read or drawn a chunk at a time as the run goes."""
    from ketadur.population.presets import PRESETS
    from ketadur.population.source import DrawnPopulation, FilePopulation
    from ketadur.population.table import SUFFIXES

    if patients is not None:
        check_count(patients, "--patients")
    if Path(population).suffix.lower() in SUFFIXES:
        return FilePopulation(population, limit=patients)
    if population not in PRESETS:
        raise KetadurInputError(
            "--population",
            f"must be a .parquet/.csv file or a preset ({', '.join(sorted(PRESETS))})",
            population,
        )
    return DrawnPopulation(population, 1000 if patients is None else patients, seed)


def simulate_population_cmd(
    protocol_name: str,
    *,
    arm: str | None,
    population: str,
    patients: int | None,
    seed: int,
    days: float | None,
    outputs: str,
    out: Path | None,
    chunk_size: int,
    shards: int = 0,
    scheduler: str | None = None,
    device: str = "cpu",
) -> None:
    """Simulate a population on a protocol arm with the fast engine, streaming to ``out``."""
    from ketadur.engine.population import check_request, simulate_population, write_chunks
    from ketadur.population.table import check_table_path
    from ketadur.protocols.io import load_protocol

    check_seed(seed)
    if (shards > 0 or scheduler is not None) and device != "cpu":
        raise KetadurInputError("--device", "a Dask run simulates on its workers' CPUs", device)
    if out is None:
        raise KetadurInputError("--out", "a population run needs an output file (.parquet/.csv)")
    check_table_path(out, "--out")
    protocol = load_protocol(protocol_name)
    names = tuple(o.strip() for o in outputs.split(",") if o.strip())
    source, *_, adaptive = check_request(
        protocol,
        population_source(population, patients, seed),
        arm=arm,
        days=days,
        outputs=names,
        chunk_size=chunk_size,
        device=device,
    )
    if adaptive and device == "gpu":
        err_console.print(
            "note: this arm adapts to each patient as it runs, so it is simulated on the CPU"
        )
    start = time.perf_counter()
    if shards < 0:
        raise KetadurInputError("--shards", "must be >= 0 (0: run in this process)", shards)
    if shards > 0 or scheduler is not None:
        from ketadur.engine.distributed import simulate_population_distributed

        with err_console.status("simulating on Dask"):
            result = simulate_population_distributed(
                protocol, source, shards=max(shards, 2), scheduler=scheduler, arm=arm,
                days=days, outputs=names, seed=seed,
            )  # fmt: skip
        write_chunks(iter([result]), out)
        _report(protocol, arm, len(source), days, start, out)
        return
    with progress_bar() as bar:
        task = bar.add_task("simulating patients", total=len(source))
        chunks = simulate_population(
            protocol,
            source,
            arm=arm,
            days=days,
            outputs=names,
            seed=seed,
            chunk_size=chunk_size,
            device=device,
            progress=lambda done: bar.update(task, completed=done),
        )
        write_chunks(chunks, out)
    _report(protocol, arm, len(source), days, start, out)


def _report(protocol, arm, n_patients: int, days, start: float, out: Path) -> None:
    elapsed = time.perf_counter() - start
    chosen = protocol.arm(arm).name
    span = protocol.duration_days if days is None else days
    console.print(
        f"{n_patients} patients x {span:g} days of {protocol.name}/{chosen} in {elapsed:.1f} s "
        f"({n_patients * span / 365.25 / elapsed:.1f} patient-years/s); written to {out}"
    )
    console.print(f"[dim]{DISCLAIMER}[/dim]")


def register(app: typer.Typer) -> None:
    """Add ``ketadur population`` to ``app``."""

    @app.command("population")
    def population(
        preset: Annotated[
            str, typer.Argument(help="Preset name (see docs/population.md).")
        ] = "trd-adults",
        patients: Annotated[int, typer.Option(help="Number of patients (> 0).")] = 1000,
        seed: Annotated[
            int, typer.Option(help="Random seed (>= 0); patient i uses stream (seed, i).")
        ] = 0,
        out: Annotated[Path, typer.Option(help="Output .parquet or .csv.")] = _DEFAULT_OUT,
    ) -> None:
        """Draw a virtual population: one row per patient, covariates and every parameter."""
        population_cmd(preset, patients, seed, out)
