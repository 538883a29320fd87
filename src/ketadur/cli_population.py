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


def population_cmd(preset: str, patients: int, seed: int, out: Path) -> None:
    """Draw a virtual population and write it (one row per patient)."""
    from ketadur.population.generate import generate_population
    from ketadur.population.presets import get_preset
    from ketadur.population.table import check_table_path, write_table

    get_preset(preset)
    check_count(patients, "--patients")
    check_seed(seed)
    check_table_path(out, "--out")
    table = generate_population(preset, patients, seed)
    write_table(table, out)
    console.print(f"{patients} patients of preset {preset} (seed {seed}) written to {out}")


def population_table(population: str, patients: int | None, seed: int):
    """The population of ``--population``: a table file (first ``patients`` rows if given) or a
    preset drawn with ``seed`` (1000 patients unless ``patients`` is given)."""
    from ketadur.population.generate import generate_population
    from ketadur.population.presets import PRESETS
    from ketadur.population.table import SUFFIXES, read_population

    if Path(population).suffix.lower() in SUFFIXES:
        table = read_population(population)
        if patients is not None:
            check_count(patients, "--patients")
            table = table.iloc[:patients]
        return table
    if population not in PRESETS:
        raise KetadurInputError(
            "--population",
            f"must be a .parquet/.csv file or a preset ({', '.join(sorted(PRESETS))})",
            population,
        )
    n = 1000 if patients is None else patients
    check_count(n, "--patients")
    return generate_population(population, n, seed)


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
    table = population_table(population, patients, seed)
    names = tuple(o.strip() for o in outputs.split(",") if o.strip())
    *_, adaptive = check_request(
        protocol, table, arm=arm, days=days, outputs=names, chunk_size=chunk_size, device=device
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
                protocol, table, shards=max(shards, 2), scheduler=scheduler, arm=arm,
                days=days, outputs=names, seed=seed,
            )  # fmt: skip
        write_chunks(iter([result]), out)
        _report(protocol, arm, table, days, start, out)
        return
    with progress_bar() as bar:
        task = bar.add_task("simulating patients", total=len(table))
        chunks = simulate_population(
            protocol,
            table,
            arm=arm,
            days=days,
            outputs=names,
            seed=seed,
            chunk_size=chunk_size,
            device=device,
            progress=lambda done: bar.update(task, completed=done),
        )
        write_chunks(chunks, out)
    _report(protocol, arm, table, days, start, out)


def _report(protocol, arm, table, days, start: float, out: Path) -> None:
    elapsed = time.perf_counter() - start
    chosen = protocol.arm(arm).name
    span = protocol.duration_days if days is None else days
    console.print(
        f"{len(table)} patients x {span:g} days of {protocol.name}/{chosen} in {elapsed:.1f} s "
        f"({len(table) * span / 365.25 / elapsed:.1f} patient-years/s); written to {out}"
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
