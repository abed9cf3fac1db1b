"""Where the preprocessing shards run: in this process, in local worker processes, or on a
Dask cluster (``preprocess.engine``).

Every engine runs the same module-level function on each shard and hands the results back
in shard order, with a bounded number of shards in flight, so the stage writing them holds
only a few shards in memory and writes the same bytes whatever ran them.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from omegaconf import DictConfig

from tunelab.errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

# `workers: auto` stops here: each worker process imports its own parsers (music21 alone is a
# few hundred MB), and one process writes every shard's output in order.
MAX_AUTO_WORKERS = 16
IN_FLIGHT_PER_WORKER = 2  # queued shards per worker: keeps workers busy, memory bounded


@dataclass(frozen=True)
class Engine:
    """How to run shards: ``kind`` local or dask, ``workers`` processes (local, or a local
    Dask cluster's), ``shard_size`` source files or pieces per shard."""

    kind: str = "local"
    workers: int = 1
    shard_size: int = 64
    scheduler_address: str | None = None


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # honours taskset and container CPU sets
    except AttributeError:
        return os.cpu_count() or 1


def engine_of(cfg: DictConfig) -> Engine:
    """The ``preprocess`` section (checked by :func:`tunelab.config.validate`) as an
    :class:`Engine`, ``auto`` resolved."""
    p = cfg.preprocess
    workers = min(usable_cores(), MAX_AUTO_WORKERS) if p.workers == "auto" else int(p.workers)
    return Engine(p.engine, workers, int(p.shard_size), p.scheduler_address)


def shards(items: list[T], size: int) -> list[list[T]]:
    """``items`` cut into consecutive lists of ``size`` (the last may be shorter)."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def map_ordered(fn: Callable[[T], R], tasks: Iterable[T], engine: Engine,
                num_tasks: int | None = None) -> Iterator[R]:
    """``fn(task)`` for every task, yielded in task order, run as ``engine`` says.

    ``fn`` must be a module-level function and the tasks picklable (they travel to other
    processes); ``tasks`` is consumed lazily, at most a few per worker ahead of the results.
    With one local worker (or a single task) everything runs in this process.
    """
    workers = engine.workers if num_tasks is None else min(engine.workers, max(num_tasks, 1))
    if engine.kind == "local" and workers <= 1:
        yield from map(fn, tasks)
        return
    with _submitter(engine, workers) as (submit, slots):
        pending: deque = deque()
        try:
            for task in tasks:
                pending.append(submit(fn, task))
                if len(pending) >= slots:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # a failed shard (or a consumer that stopped) leaves nothing queued behind it
            for future in pending:
                future.cancel()


@contextmanager
def _submitter(engine: Engine, workers: int) -> Iterator[tuple[Callable[..., Any], int]]:
    """(submit(fn, task) -> future, how many futures to keep in flight) for the engine."""
    if engine.kind == "local":
        # forkserver, not fork: the parent may hold threads (tqdm's monitor, torch's pools)
        # that a forked child would inherit mid-lock.
        ctx = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            yield pool.submit, workers * IN_FLIGHT_PER_WORKER
        return
    if engine.kind != "dask":
        raise ConfigError(f"preprocess.engine={engine.kind}: choose local or dask")
    with _dask_client(engine, workers) as client:
        threads = sum(client.nthreads().values()) or workers
        yield (lambda fn, task: client.submit(fn, task, pure=False)), threads * IN_FLIGHT_PER_WORKER


@contextmanager
def _dask_client(engine: Engine, workers: int) -> Iterator[Any]:
    """A client of the cluster at ``scheduler_address``, or of a local cluster of ``workers``
    single-threaded processes (started and closed here)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as e:  # an install without the lock's dask
        raise ConfigError(f"preprocess.engine=dask: dask.distributed is not installed ({e}); "
                          "pip install -c requirements.lock distributed") from None
    if engine.scheduler_address:
        log.info("dask: connecting to %s", engine.scheduler_address)
        with Client(engine.scheduler_address) as client:
            yield client
        return
    # threads_per_worker=1: the parsers hold the GIL, so parallelism comes from processes
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.WARNING) as cluster, Client(cluster) as client:
        yield client
