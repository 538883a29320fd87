"""Population engine: N virtual patients x one protocol arm, in chunks, with the fast engine.

A protocol arm without adaptive elements (every phase entered by everyone, no rules) gives every
patient the same schedule up to weight-based amounts and their own covariates: it is compiled once
for a whole chunk and integrated by the batched Numba kernel, 32 patients at a time in SIMD
lanes (:mod:`ketadur.engine.lanes`). An adaptive arm (entry criteria, randomised fractions,
boosters, interval rules) makes schedules differ; each patient then runs through the adaptive
protocol runner on the fast engine, with its own random stream.

Results are a tidy table (one row per patient and output time, one column per output), yielded
chunk by chunk so that a file of any size can be written with bounded memory.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ketadur.engine.fast import (
    JUMP_DOSE,
    JUMP_SESSION,
    OUTPUT_NAMES,
    FastSettings,
    output_codes,
)
from ketadur.engine.gpu import CHUNKS_IN_FLIGHT, check_device, integrate_batch_gpu
from ketadur.engine.lanes import integrate_batch
from ketadur.errors import KetadurInputError
from ketadur.model import pk
from ketadur.model.cascade import CascadeConstants
from ketadur.model.parameters import REGISTRY
from ketadur.model.pk import PKConstants
from ketadur.model.pk_modes import pk_modes
from ketadur.model.synapse_mood import SynapseConstants
from ketadur.model.system import N_STATES, compile_schedule_batch, initial_states
from ketadur.population.source import PopulationSource, as_source
from ketadur.population.table import check_table_path, life_event_arrays, patient_of, temporary_name
from ketadur.protocols.schedule import fixed_regimen
from ketadur.protocols.schema import Arm, Protocol

if TYPE_CHECKING:
    from ketadur.protocols.execute import ProtocolRun
    from ketadur.trials.observe import Rater

DEFAULT_OUTPUTS = ("madrs",)
MAX_DAYS = 3650.0
_DEFAULT_SETTINGS = FastSettings()


def is_adaptive(arm: Arm) -> bool:
    """Whether ``arm`` has entry criteria, randomised fractions or rules (schedules then differ
    between patients)."""
    return any(p.rules or p.entry.require is not None or p.entry.fraction < 1.0 for p in arm.phases)


def patient_seed(seed: int, index: int) -> int:
    """The seed of patient ``index``'s own random stream (independent of sharding)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


@dataclass(frozen=True)
class PopulationArrays:
    """Per-patient constants in the kernel's layout (rows), PK modes and initial states."""

    pkc: PKConstants
    pkc_rows: np.ndarray
    cc_rows: np.ndarray
    sc_rows: np.ndarray
    mindfulness_weight: np.ndarray
    inert_placebo_weight: np.ndarray
    modes: tuple[np.ndarray, np.ndarray, np.ndarray]
    y0: np.ndarray


def _rows(constants: tuple, n: int) -> np.ndarray:
    return np.column_stack([np.broadcast_to(np.asarray(v, dtype=float), (n,)) for v in constants])


def population_arrays(df: pd.DataFrame) -> PopulationArrays:
    """Constants of every patient of a validated population table, computed as arrays by the
    model's own ``from_params`` (so the fast engine cannot drift from the reference)."""
    n = len(df)
    p = {name: df[name].to_numpy(dtype=float) for name in REGISTRY}
    weight = df["weight_kg"].to_numpy(dtype=float)
    pkc = PKConstants.from_params(p, weight)  # type: ignore[arg-type]
    met = df["bdnf_genotype"].map({"val/val": 0, "val/met": 1, "met/met": 2}).to_numpy()
    cc = CascadeConstants.from_params(
        p,  # type: ignore[arg-type]
        met_alleles=met,
        trkb_deleted=df["trkb_deleted"].to_numpy(dtype=bool),
    )
    cov = {c: df[c].to_numpy(dtype=float) for c in ("age_years", "chronic_stress")}
    sc = SynapseConstants.from_params(
        p,  # type: ignore[arg-type]
        **cov,
        tolerance_propensity=df["tolerance_propensity"].to_numpy(dtype=float),
        baseline_madrs=df["baseline_madrs"].to_numpy(dtype=float),
        situational_madrs=df["situational_madrs"].to_numpy(dtype=float),
        situational_half_life_days=df["situational_half_life_days"].to_numpy(dtype=float),
        baseline_sbp_mmhg=df["baseline_sbp_mmhg"].to_numpy(dtype=float),
    )
    a = pk.pk_matrices(pkc)[0].reshape(n, pk.N_PK, pk.N_PK)
    n_local = len(pk.PK_LOCAL)
    modes = pk_modes(a[:, :n_local, :n_local])
    y0 = initial_states(df["situational_madrs"].to_numpy(dtype=float))
    per_patient = PKConstants(*(np.broadcast_to(np.asarray(v, dtype=float), (n,)) for v in pkc))
    return PopulationArrays(
        pkc=per_patient,
        pkc_rows=np.column_stack(per_patient),
        cc_rows=_rows(cc, n),
        sc_rows=_rows(sc, n),
        mindfulness_weight=np.broadcast_to(sc.mindfulness_weight, (n,)).astype(float),
        inert_placebo_weight=np.broadcast_to(sc.inert_placebo_weight, (n,)).astype(float),
        modes=(modes.lam, modes.v, modes.v_inv),
        y0=y0,
    )


def _output_days(days: float, output_days: Sequence[float] | None) -> np.ndarray:
    if not (0.0 < days <= MAX_DAYS):
        raise KetadurInputError("days", f"must lie in (0, {MAX_DAYS:g}]", days)
    if output_days is None:
        return np.arange(0.0, np.floor(days) + 1.0)
    t = np.unique(np.round(np.asarray(output_days, dtype=float), 9))
    if t.size == 0 or t[0] < 0.0 or t[-1] > days:
        raise KetadurInputError("output_days", f"must be non-empty and within [0, {days:g}]", ...)
    return t


def _check_outputs(outputs: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(outputs))
    if not chosen:
        raise KetadurInputError("outputs", "choose at least one output", ...)
    output_codes(chosen)  # unknown names raise here
    return chosen


def _fixed_chunk(
    protocol: Protocol,
    arm: Arm,
    df: pd.DataFrame,
    t_out_days: np.ndarray,
    days: float,
    outputs: tuple[str, ...],
    settings: FastSettings,
    device: str = "cpu",
    engine_lock: AbstractContextManager | None = None,
) -> pd.DataFrame:
    """One chunk of a fixed arm: schedules compiled, integrated by the batch engine (inside
    ``engine_lock``), and the tidy table built."""
    arrays = population_arrays(df)
    regimen = fixed_regimen(protocol, arm)
    batch = compile_schedule_batch(
        regimen,
        weight_kg=df["weight_kg"].to_numpy(dtype=float),
        pkc=arrays.pkc,
        mindfulness_weight=arrays.mindfulness_weight,
        inert_placebo_weight=arrays.inert_placebo_weight,
        habitual_exercise_sessions_per_week=df["habitual_exercise_sessions_per_week"].to_numpy(
            dtype=float
        ),
        habitual_sleep_h_per_night=df["habitual_sleep_h_per_night"].to_numpy(dtype=float),
        background_antidepressant=df["background_antidepressant"].to_numpy(dtype=bool),
    )
    n = len(df)
    kinds = np.array(
        [JUMP_DOSE if k == "dose" else JUMP_SESSION for k in batch.j_kind], dtype=np.int64
    )
    le_ptr, le_t, le_points = life_event_arrays(df)
    codes = output_codes(outputs)
    t_out_h = t_out_days * 24.0
    out = np.full((n, t_out_h.size, codes.size), np.nan)
    y_end = np.empty((n, N_STATES))
    steps = np.zeros(n, dtype=np.int64)
    lam, v, v_inv = arrays.modes
    batch_integrator = integrate_batch_gpu if device == "gpu" else integrate_batch
    with engine_lock or nullcontext():
        batch_integrator(
            arrays.pkc_rows, arrays.cc_rows, arrays.sc_rows, lam, v, v_inv,
            batch.bp_t, batch.bp_u, batch.jptr, kinds, batch.j_value, batch.j_delta,
            le_ptr, le_t, le_points, arrays.y0, 0.0, days * 24.0, t_out_h, codes,
            *settings.state_tolerances(), settings.max_step_h, out, y_end, steps,
        )  # fmt: skip
    failed = steps < 0
    if failed.any():
        out[failed] = np.nan
    table = pd.DataFrame(
        {
            "subject_id": np.repeat(df["subject_id"].to_numpy(), t_out_h.size),
            "t_days": np.tile(t_out_days, n),
        }
    )
    for c, name in enumerate(outputs):
        table[name] = out[:, :, c].reshape(-1)
    return table


def adaptive_runs(
    protocol: Protocol,
    arm: Arm,
    df: pd.DataFrame,
    *,
    seed: int,
    first_index: int = 0,
    rater: Callable[[int], Rater] | None = None,
    **options,
) -> Iterator[tuple[pd.Series, ProtocolRun]]:
    """Each patient (row) of ``df`` through the adaptive protocol runner on the fast engine, with
    that patient's own seed (``first_index`` + position in ``df``); ``rater`` gives the patient
    of that index a :class:`~ketadur.trials.observe.Rater` (decisions on observed ratings);
    ``options`` go to :func:`~ketadur.protocols.execute.run_protocol`."""
    from ketadur.protocols.execute import run_protocol  # the runner imports the engines

    for k, (_, row) in enumerate(df.iterrows()):
        run = run_protocol(
            protocol,
            patient_of(row),
            arm=arm.name,
            seed=patient_seed(seed, first_index + k),
            engine="fast",
            rater=None if rater is None else rater(first_index + k),
            **options,
        )
        yield row, run


def _adaptive_chunk(
    protocol: Protocol,
    arm: Arm,
    df: pd.DataFrame,
    first_index: int,
    t_out_days: np.ndarray,
    outputs: tuple[str, ...],
    seed: int,
) -> pd.DataFrame:
    parts = []
    for row, run in adaptive_runs(protocol, arm, df, seed=seed, first_index=first_index):
        table = run.result.table
        t = np.round(table["t_days"].to_numpy(), 9)
        idx = np.searchsorted(t, t_out_days)
        part = pd.DataFrame({"subject_id": row["subject_id"], "t_days": t_out_days})
        for name in outputs:
            part[name] = table[name].to_numpy()[idx]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def check_request(
    protocol: Protocol,
    population: pd.DataFrame | PopulationSource,
    *,
    arm: str | None = None,
    days: float | None = None,
    outputs: Sequence[str] = DEFAULT_OUTPUTS,
    output_days: Sequence[float] | None = None,
    chunk_size: int = 2000,
    device: str = "cpu",
) -> tuple[PopulationSource, Arm, float, np.ndarray, tuple[str, ...], bool]:
    """Check the arguments of :func:`simulate_population` before any work is done; returns the
    checked population source, the arm, days, output days, output names and whether the arm is
    adaptive."""
    check_device(device)
    source = as_source(population)
    chosen = protocol.arm(arm)
    days = float(protocol.duration_days if days is None else days)
    t_out = _output_days(days, output_days)
    names = _check_outputs(outputs)
    if not (isinstance(chunk_size, int) and chunk_size > 0):
        raise KetadurInputError("chunk_size", "must be a positive integer", chunk_size)
    adaptive = is_adaptive(chosen)
    if adaptive:
        if days > protocol.duration_days:
            raise KetadurInputError(
                "days", f"an adaptive protocol runs for its duration ({protocol.duration_days:g})"
            )
        if np.any(np.abs(t_out * 24.0 - np.round(t_out * 24.0)) > 1e-6):
            raise KetadurInputError(
                "output_days", "must fall on whole hours for an adaptive protocol", ...
            )
    return source, chosen, days, t_out, names, adaptive


def simulate_population(
    protocol: Protocol,
    population: pd.DataFrame | PopulationSource,
    *,
    arm: str | None = None,
    days: float | None = None,
    outputs: Sequence[str] = DEFAULT_OUTPUTS,
    output_days: Sequence[float] | None = None,
    seed: int = 0,
    chunk_size: int = 2000,
    settings: FastSettings = _DEFAULT_SETTINGS,
    first_index: int = 0,
    progress: Callable[[int], None] | None = None,
    device: str = "cpu",
) -> Iterator[pd.DataFrame]:
    """Simulate every patient of ``population`` on ``arm`` of ``protocol`` for ``days`` (default
    the protocol's duration); yield tidy tables (``subject_id, t_days, <outputs>``) per chunk.

    ``population`` is a table, or a :class:`~ketadur.population.source.PopulationSource` (a
    preset drawn or a file read a chunk at a time: memory then stays bounded by ``chunk_size``
    whatever the number of patients).

    ``output_days`` default to every whole day. ``seed`` drives only the randomised parts of
    adaptive protocols, one stream per patient (patient ``first_index + k`` for row ``k``), so
    results do not depend on chunking or sharding. ``progress`` is called with the number of
    patients finished after each chunk. ``device="gpu"`` integrates arms without adaptive
    elements on a CUDA GPU (:mod:`ketadur.engine.gpu`; chunks of tens of thousands of patients
    fill one); adaptive arms, whose patients' schedules are decided as they run, stay on the CPU.

    Examples
    --------
    >>> from ketadur.population.generate import generate_population
    >>> from ketadur.protocols.io import load_protocol
    >>> pop = generate_population("trd-adults", 4, seed=1)
    >>> table = next(simulate_population(load_protocol("protocol1_single_infusion"), pop, days=7))
    >>> day0, day1 = (table.query(f"t_days == {d}").madrs.to_numpy() for d in (0, 1))
    >>> table.shape, bool((day1 < day0).all())
    ((32, 4), True)
    """
    source, chosen, days, t_out, names, adaptive = check_request(
        protocol, population, arm=arm, days=days, outputs=outputs, output_days=output_days,
        chunk_size=chunk_size, device=device,
    )  # fmt: skip

    # On the CPU one chunk is in the batch engine (both cores; it releases the GIL) while the
    # next is drawn and prepared and the last one's table built: a tenth of the run otherwise.
    engine_lock = None if device == "gpu" else threading.Lock()

    def chunk(start: int, part: pd.DataFrame) -> pd.DataFrame:
        if adaptive:
            table = _adaptive_chunk(protocol, chosen, part, first_index + start, t_out, names, seed)
        else:
            table = _fixed_chunk(
                protocol, chosen, part, t_out, days, names, settings, device, engine_lock
            )
        table.insert(1, "arm", chosen.name)
        return table

    starts = range(0, len(source), chunk_size)
    parts = zip(starts, source.blocks(chunk_size), strict=True)
    if adaptive:
        tables = (chunk(start, part) for start, part in parts)
    else:
        tables = _pipelined(chunk, parts, CHUNKS_IN_FLIGHT if device == "gpu" else 2)
    for start, table in zip(starts, tables, strict=True):
        if progress is not None:
            progress(min(start + chunk_size, len(source)))
        yield table


def _pipelined(
    make: Callable[[int, pd.DataFrame], pd.DataFrame],
    parts: Iterable[tuple[int, pd.DataFrame]],
    in_flight: int,
) -> Iterator[pd.DataFrame]:
    """``make(start, part)`` for each of ``parts``, ``in_flight`` at a time in threads, yielded in
    order (each chunk depends on its own rows alone, so the results are those of the plain
    loop)."""
    with ThreadPoolExecutor(in_flight) as pool:
        pending: deque = deque()
        for start, part in parts:
            pending.append(pool.submit(make, start, part))
            if len(pending) >= in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def write_chunks(chunks: Iterator[pd.DataFrame], path: Path | str) -> Path:
    """Stream ``chunks`` into ``path`` (.parquet or .csv) under a temporary name, renamed when the
    last chunk is written: an interrupted run never leaves a file that looks complete."""
    p = check_table_path(path)
    tmp = temporary_name(p)
    writer = None
    try:
        if p.suffix.lower() == ".parquet":
            for chunk in chunks:
                batch = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, batch.schema)
                writer.write_table(batch)
            if writer is not None:
                writer.close()
                writer = None
        else:
            header = True
            for chunk in chunks:
                chunk.to_csv(tmp, mode="w" if header else "a", header=header, index=False)
                header = False
        if not tmp.exists():
            raise KetadurInputError("population", "produced no rows", ...)
        os.replace(tmp, p)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return p


__all__ = [
    "OUTPUT_NAMES",
    "PopulationArrays",
    "is_adaptive",
    "population_arrays",
    "simulate_population",
    "write_chunks",
]
