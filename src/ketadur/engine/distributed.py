"""Scale-out: one population run split into shards on a Dask cluster (a local one by default).

Each shard is a block of consecutive patients simulated by
:func:`ketadur.engine.population.simulate_population` with ``first_index`` set to the block's first
patient, so adaptive protocols draw from the same per-patient random streams as a single-process
run: the concatenated result is identical, bit for bit, whatever the shard or worker count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ketadur.engine.population import DEFAULT_OUTPUTS, check_request, simulate_population
from ketadur.errors import KetadurInputError
from ketadur.population.source import PopulationSource
from ketadur.protocols.schema import Protocol


def _shard(protocol, part, first_index, kwargs) -> pd.DataFrame:
    chunks = simulate_population(protocol, part, first_index=first_index, **kwargs)
    return pd.concat(list(chunks), ignore_index=True)


def simulate_population_distributed(
    protocol: Protocol,
    population: pd.DataFrame | PopulationSource,
    *,
    shards: int = 4,
    scheduler: str | None = None,
    n_workers: int = 2,
    arm: str | None = None,
    days: float | None = None,
    outputs: Sequence[str] = DEFAULT_OUTPUTS,
    output_days: Sequence[float] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Simulate ``population`` in ``shards`` blocks on Dask: on the scheduler at ``scheduler``
    (e.g. ``tcp://10.0.0.5:8786``) or on a local cluster of ``n_workers`` single-threaded
    processes. Returns the same table as the single-process run, in patient order. A drawn
    population (:class:`~ketadur.population.source.DrawnPopulation`) travels as its recipe: each
    worker draws its own shard's patients."""
    from dask.distributed import Client, LocalCluster

    if not (isinstance(shards, int) and shards > 0):
        raise KetadurInputError("shards", "must be a positive integer", shards)
    if not (isinstance(n_workers, int) and n_workers > 0):
        raise KetadurInputError("n_workers", "must be a positive integer", n_workers)
    source, chosen, *_ = check_request(
        protocol, population, arm=arm, days=days, outputs=outputs, output_days=output_days
    )
    kwargs = {
        "arm": chosen.name,
        "days": days,
        "outputs": tuple(outputs),
        "output_days": output_days,
        "seed": seed,
    }
    bounds = np.linspace(0, len(source), min(shards, len(source)) + 1).astype(int)
    blocks = list(zip(bounds[:-1].tolist(), source.parts(bounds.tolist()), strict=True))
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    else:
        cluster = None
        client = Client(scheduler)
    try:
        futures = [client.submit(_shard, protocol, t, a, kwargs, pure=False) for a, t in blocks]
        parts = client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return pd.concat(parts, ignore_index=True)
