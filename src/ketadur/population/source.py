"""Where a population run's patients come from: a table in memory, a preset drawn block by block,
or a table file read block by block.

A run of a million patients must not hold a million patients: the population engine asks its
source for validated blocks of consecutive patients, one chunk at a time, so its memory is set by
the chunk size. A table in memory is validated once, whole; a drawn population is drawn a block at
a time (patient ``i`` has its own random stream, so the patients are those of
:func:`~ketadur.population.generate.generate_population`); a file is checked in one streaming pass
before any simulation (so a bad row late in the file is reported before the run, not after hours)
and streamed again as the run goes.
"""

from __future__ import annotations

import dataclasses
import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from ketadur.errors import KetadurInputError
from ketadur.population.generate import MAX_PATIENTS, generate_population
from ketadur.population.presets import DEFAULT_PRESET, Preset, get_preset
from ketadur.population.table import SUFFIXES, validate_population
from ketadur.population.typical import PopulationParameters

FILE_BLOCK_PATIENTS = 50_000
"""Rows of a table file read at a time when it is checked (about 55 MiB of table)."""


class PopulationSource(ABC):
    """Patients ``0 .. len - 1`` of a population, handed out in validated blocks."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def check(self) -> None:
        """Raise :class:`KetadurInputError` for any patient that cannot be simulated (called
        before a run, so that no work is done on a table that will fail)."""

    @abstractmethod
    def blocks(self, size: int) -> Iterator[pd.DataFrame]:
        """Validated tables of ``size`` consecutive patients (the last may be shorter), in
        order."""

    @abstractmethod
    def part(self, start: int, stop: int) -> PopulationSource:
        """Patients ``start .. stop - 1`` as a source of their own (a shard of a distributed
        run; what travels to a worker is this object)."""

    def parts(self, bounds: Sequence[int]) -> list[PopulationSource]:
        """The shards between consecutive ``bounds`` (increasing), as :meth:`part` gives them."""
        return [self.part(a, b) for a, b in itertools.pairwise(bounds)]


class TablePopulation(PopulationSource):
    """A population table in memory, validated once, whole."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.table = validate_population(table)

    def __len__(self) -> int:
        return len(self.table)

    def check(self) -> None:
        """Nothing left to check: the table was validated when the source was made."""

    def blocks(self, size: int) -> Iterator[pd.DataFrame]:
        for start in range(0, len(self.table), size):
            yield self.table.iloc[start : start + size]

    def part(self, start: int, stop: int) -> PopulationSource:
        return TablePopulation(self.table.iloc[start:stop])


@dataclass(frozen=True)
class DrawnPopulation(PopulationSource):
    """``n_patients`` patients of ``preset`` with ``seed``, from patient ``start`` on, drawn a
    block at a time; ``life_events=False`` blanks their life events (one SBML model then serves
    every patient, as in ``benchmarks/population.py``) without changing any other draw.

    Examples
    --------
    >>> drawn = DrawnPopulation("trd-adults", 5, seed=1)
    >>> [list(block["subject_id"]) for block in drawn.blocks(2)]
    [['V0000000', 'V0000001'], ['V0000002', 'V0000003'], ['V0000004']]
    >>> list(next(drawn.part(3, 5).blocks(2))["subject_id"])
    ['V0000003', 'V0000004']
    """

    preset: str | Preset = DEFAULT_PRESET
    n_patients: int = 1000
    seed: int = 0
    start: int = 0
    parameters: PopulationParameters | None = None
    life_events: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.preset, str):
            get_preset(self.preset)  # an unknown preset raises here, before any work
        if not (isinstance(self.n_patients, int) and 0 < self.n_patients <= MAX_PATIENTS):
            raise KetadurInputError(
                "patients", f"must be an integer in [1, {MAX_PATIENTS}]", self.n_patients
            )
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise KetadurInputError("seed", "must be a non-negative integer", self.seed)

    def __len__(self) -> int:
        return self.n_patients

    def check(self) -> None:
        """Nothing left to check: the arguments were checked when the source was made, and
        drawn patients lie inside the registry's ranges by construction."""

    def blocks(self, size: int) -> Iterator[pd.DataFrame]:
        for first in range(0, self.n_patients, size):
            n = min(size, self.n_patients - first)
            table = generate_population(
                self.preset,
                n,
                self.seed,
                start=self.start + first,
                parameters=self.parameters,
                life_events=self.life_events,
            )
            yield validate_population(table)

    def part(self, start: int, stop: int) -> PopulationSource:
        return dataclasses.replace(self, start=self.start + start, n_patients=stop - start)


class FilePopulation(PopulationSource):
    """The first ``limit`` rows (all by default) of a .parquet or .csv population table, read a
    block at a time."""

    def __init__(self, path: Path | str, limit: int | None = None) -> None:
        p = Path(path)
        if p.suffix.lower() not in SUFFIXES:
            raise KetadurInputError("population", f"file must end in one of {SUFFIXES}", str(p))
        if not p.is_file():
            raise KetadurInputError("population", "file not found", str(p))
        if limit is not None and not (isinstance(limit, int) and limit > 0):
            raise KetadurInputError("patients", "must be a positive integer", limit)
        self.path = p
        self.limit = limit
        self._rows: int | None = None

    def _raw(self, size: int) -> Iterator[pd.DataFrame]:
        """The file's rows as read, in tables of ``size`` (the last may be shorter)."""
        try:
            if self.path.suffix.lower() == ".parquet":
                batches = pq.ParquetFile(self.path).iter_batches(batch_size=size)
                yield from _rebatched((b.to_pandas() for b in batches), size, self.limit)
            else:
                with pd.read_csv(
                    self.path,
                    dtype={"subject_id": str, "life_events": str},
                    float_precision="round_trip",
                    chunksize=size,
                ) as reader:
                    yield from _rebatched(reader, size, self.limit)
        except Exception as exc:  # a corrupt or foreign file
            raise KetadurInputError(
                "population", f"cannot be read: {exc}", str(self.path)
            ) from None

    def check(self) -> None:
        if self._rows is not None:
            return
        seen: set[str] = set()
        rows = 0
        for raw in self._raw(FILE_BLOCK_PATIENTS):
            table = validate_population(raw)
            ids = table["subject_id"]
            repeated = ids[ids.isin(seen)]
            if len(repeated):
                raise KetadurInputError("population.subject_id", "must be unique", repeated.iloc[0])
            seen.update(ids)
            rows += len(table)
        if rows == 0:
            raise KetadurInputError("population", "must be a table with at least one row", ...)
        self._rows = rows

    def __len__(self) -> int:
        if self._rows is None:
            self.check()
        assert self._rows is not None
        return self._rows

    def blocks(self, size: int) -> Iterator[pd.DataFrame]:
        for raw in self._raw(size):
            yield validate_population(raw)

    def part(self, start: int, stop: int) -> PopulationSource:
        return self.parts([start, stop])[0]

    def parts(self, bounds: Sequence[int]) -> list[PopulationSource]:
        """The shards between consecutive ``bounds``, cut from one pass over the file (a shard
        per pass would read the file once per shard)."""
        pieces: list[list[pd.DataFrame]] = [[] for _ in bounds[1:]]
        first = 0
        for table in self._raw(FILE_BLOCK_PATIENTS):
            last = first + len(table)
            for k, (a, b) in enumerate(itertools.pairwise(bounds)):
                if a < last and b > first:
                    pieces[k].append(table.iloc[max(a - first, 0) : b - first])
            first = last
            if first >= bounds[-1]:
                break
        return [TablePopulation(pd.concat(p, ignore_index=True)) for p in pieces]


def _rebatched(
    pieces: Iterator[pd.DataFrame], size: int, limit: int | None
) -> Iterator[pd.DataFrame]:
    """``pieces`` (tables of any lengths) as tables of exactly ``size`` rows but the last, up to
    ``limit`` rows in all."""
    held: list[pd.DataFrame] = []
    n_held = 0
    left = limit
    for piece in pieces:
        if left is not None:
            piece = piece.iloc[:left]
            left -= len(piece)
        held.append(piece)
        n_held += len(piece)
        while n_held >= size:
            whole = pd.concat(held, ignore_index=True)
            yield whole.iloc[:size].reset_index(drop=True)
            held, n_held = [whole.iloc[size:]], n_held - size
        if left == 0:
            break
    if n_held:
        yield pd.concat(held, ignore_index=True)


def as_source(population: pd.DataFrame | PopulationSource) -> PopulationSource:
    """``population`` as a source: a table is validated whole, a source is checked."""
    if isinstance(population, PopulationSource):
        population.check()
        return population
    return TablePopulation(population)


__all__ = [
    "DrawnPopulation",
    "FilePopulation",
    "PopulationSource",
    "TablePopulation",
    "as_source",
]
