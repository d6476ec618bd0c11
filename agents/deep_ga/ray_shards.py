"""Deep GA population evaluation over Ray actors (``pip install rlwb[ray]``).

Each actor owns its engines (built from the driver engine's recipe: task, backend, dtype,
task arguments, device), its own copy of the noise table and a cache of the networks it
built in its last calls. An evaluation is split into the same chunks a one-process run
evaluates (:mod:`rlwb.agents.deep_ga.evaluation`); chunk c goes to actor ``c % num_workers``
with its seed lists, its reset seed and the observation normalisation, and the actor
rebuilds the chunk's networks from the seeds (each distinct parent once, from its cache or
its seed list, then one mutation per child). Only seeds, fitness and observation sums cross
the wire, never weights or states, and each chunk is computed exactly as in one process, so
the results are equal bit for bit (a test checks this on a MuJoCo task with more actors than
CPUs).

Resources: actors ask Ray for one CPU each; where the cluster has fewer free CPUs than
actors, each asks for an equal share of them instead (one line says so), so actors never
wait for CPUs that will not come; an actor that still does not start within
``ACTOR_START_TIMEOUT`` seconds is a :class:`~rlwb.errors.ConfigError`. The driver waits
for results in short slices and reports progress between them, so SIGINT/SIGTERM stop a
generation within about a second. With ``num_workers`` actors the driver calls
``ray.init()`` if Ray is not initialised yet (keeping the process's SIGINT/SIGTERM
handlers); to use a cluster, call ``ray.init(address=...)`` before training.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from typing import Any

import torch

from rlwb import agent_kit as kit
from rlwb import policies
from rlwb.agents.deep_ga.evaluation import (
    EngineCache,
    Norm,
    PopulationResult,
    Progress,
    chunk_bounds,
    chunk_seed,
    run_chunk,
)
from rlwb.agents.deep_ga.genome import Genomes
from rlwb.engine import Engine, make_engine
from rlwb.errors import ConfigError

ACTOR_START_TIMEOUT = 120.0  # seconds for every actor to start before giving up
WAIT_SLICE = 1.0  # seconds between progress reports while waiting for results


class ShardWorker:
    """What one Ray actor holds; plain Python, so it also runs (and is tested) in-process."""

    def __init__(
        self, factory: dict[str, Any], net: dict[str, Any] | tuple[str, dict[str, Any]],
        table: dict[str, Any], torch_threads: int = 1,
    ) -> None:  # fmt: skip
        """``net``: ``(class name in rlwb.policies, its keyword arguments)``, or the
        keyword arguments of a :class:`~rlwb.policies.PopulationMLP`."""
        kit.apply_torch_threads(torch_threads)  # the driver's: kernels may depend on the count
        self.factory = factory
        self.engines = EngineCache(lambda n: make_engine(num_envs=n, **self.factory))
        name, kwargs = net if isinstance(net, tuple) else ("PopulationMLP", net)
        self.net = getattr(policies, name)(**kwargs)
        self.genomes = Genomes(self.net.num_params, self.net.init_scale(), **table)
        self.cache: dict[tuple[int, ...], tuple[int, torch.Tensor]] = {}

    def ready(self) -> bool:
        return True

    def build(self, genomes: list[list[int]], call: int) -> torch.Tensor:
        """Networks of ``genomes``: each distinct parent is taken from the cache or rebuilt
        once, then every child is its parent plus one mutation (bit-identical to rebuilding
        the child's whole list). The cache keeps what the driver's last two calls built here
        (``call`` counts the driver's calls: the population and the elite candidates, whose
        best become the next generation's parents)."""
        self.cache = {g: v for g, v in self.cache.items() if v[0] >= call - 2}
        known = {g: v[1] for g, v in self.cache.items()}
        missing = sorted({tuple(g[:-1]) for g in genomes if len(g) > 1} - known.keys())
        if missing:
            rows = self.genomes.build([list(m) for m in missing])
            known.update(zip(missing, rows, strict=True))
        params = torch.empty(len(genomes), self.net.num_params, device=self.genomes.table.device)
        first = [i for i, g in enumerate(genomes) if len(g) == 1]
        later = [i for i, g in enumerate(genomes) if len(g) > 1]
        if first:
            params[first] = self.genomes.init([genomes[i][0] for i in first])
        if later:
            parents = torch.stack([known[tuple(genomes[i][:-1])] for i in later])
            params[later] = self.genomes.mutate(parents, [genomes[i][-1] for i in later])
        self.cache.update({tuple(g): (call, params[i]) for i, g in enumerate(genomes)})
        return params

    def evaluate(
        self, genomes: list[list[int]], episodes: int, seed: int, cap: int | None,
        norm: Norm = None, record: torch.Tensor | None = None, call: int = 0,
    ) -> PopulationResult:  # fmt: skip
        """One chunk: networks ``genomes``, ``episodes`` each, from the start states of
        ``seed`` (what :func:`~rlwb.agents.deep_ga.evaluation.run_chunk` does in one process)."""
        self.net.set_obs_norm(*(norm or (None, None)))
        params = self.build(genomes, call)
        return run_chunk(self.engines, self.net, params, episodes, seed, cap, record)


def init_ray(ray: Any, **options: Any) -> None:
    """``ray.init(**options)`` keeping this process's SIGINT/SIGTERM handlers (the runner's
    stop flag): Ray's driver setup installs its own."""
    if threading.current_thread() is not threading.main_thread():
        ray.init(**options)
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ray.init(**options)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def actor_cpus(free: float, num_workers: int) -> float:
    """CPUs each of ``num_workers`` actors asks for: one, or an equal share of ``free``
    where there are fewer (Ray takes at most 4 decimals)."""
    if num_workers <= free:
        return 1.0
    return max(math.floor(free / num_workers * 1e4) / 1e4, 1e-4)


class RayEvaluator:
    """The Deep GA's evaluator interface over ``num_workers`` Ray actors."""

    def __init__(
        self, engine: Engine, config: Any, num_workers: int, progress: Progress | None = None,
        net: tuple[str, dict[str, Any]] | None = None,
    ) -> None:  # fmt: skip
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "DeepGAConfig.num_workers > 0 needs Ray: pip install 'rlwb[ray]'"
            ) from None
        if not ray.is_initialized():
            init_ray(ray)
        self.ray, self.cap, self.chunk, self.calls = ray, config.horizon, config.chunk, 0
        factory = dict(engine._factory)
        factory["device"] = str(factory["device"])
        if net is None:  # an MLP population from the config (the agent passes its recipe)
            spec = engine.spec
            net = ("PopulationMLP", dict(
                obs_dim=int(torch.tensor(spec.observation_shape).prod()),
                action_dim=spec.action_dim, hidden=tuple(config.hidden), population=1,
                action_low=spec.action_low.cpu(), action_high=spec.action_high.cpu(),
                activation=config.activation,
            ))  # fmt: skip
        net = (net[0], {**net[1], "device": factory["device"]})
        table = dict(
            sigma=config.sigma,
            table_size=config.noise_table_size,
            table_seed=config.noise_table_seed,
            device=factory["device"],
        )
        free = float(ray.available_resources().get("CPU", 0.0))
        if free <= 0:
            raise ConfigError(
                f"Ray has no free CPU for the Deep GA's actors (cluster: "
                f"{ray.cluster_resources().get('CPU', 0):g} CPUs, all in use)"
            )
        cpus = actor_cpus(free, num_workers)
        if cpus < 1:
            line = (f"rlwb: Ray has {free:g} free CPUs for {num_workers} Deep GA actors: "
                    f"each asks for {cpus:g} CPU (they share the cores)")  # fmt: skip
            print(line, file=sys.stderr, flush=True)
        # Actors run on the driver's device kind; on CUDA they share the GPUs Ray sees.
        gpus = 1.0 / num_workers if torch.device(factory["device"]).type == "cuda" else 0
        actor = ray.remote(ShardWorker).options(num_cpus=cpus, num_gpus=gpus)
        self.workers = [
            actor.remote(factory, net, table, config.torch_threads) for _ in range(num_workers)
        ]
        self._wait_started(progress)

    def _wait_started(self, progress: Progress | None) -> None:
        """Wait until every actor runs; a clear error after ``ACTOR_START_TIMEOUT``."""
        pending = [w.ready.remote() for w in self.workers]
        total, deadline = len(pending), time.monotonic() + ACTOR_START_TIMEOUT
        while pending and time.monotonic() < deadline:
            if progress is not None:
                progress(total - len(pending), total)
            _, pending = self.ray.wait(pending, num_returns=len(pending), timeout=WAIT_SLICE)
        if pending:
            free = self.ray.available_resources()
            self.close()
            raise ConfigError(
                f"Ray started {total - len(pending)} of {total} Deep GA actors in "
                f"{ACTOR_START_TIMEOUT:g} s (free resources: {free}): lower "
                "--agent.num-workers or free the cluster"
            )

    def evaluate(
        self,
        params: torch.Tensor,
        genomes: list[list[int]],
        episodes: int,
        seed: int,
        norm: Norm = None,
        record: torch.Tensor | None = None,
        progress: Progress | None = None,
    ) -> PopulationResult:
        """Same as the local evaluator; ``params`` stay on the driver."""
        call, self.calls = self.calls, self.calls + 1
        norm = None if norm is None else (norm[0].cpu(), norm[1].cpu())
        bounds = chunk_bounds(len(genomes), self.chunk)
        index = {}
        for c, (lo, hi) in enumerate(bounds):
            worker = self.workers[c % len(self.workers)]
            marks = None if record is None else record[lo * episodes : hi * episodes]
            ref = worker.evaluate.remote(genomes[lo:hi], episodes, chunk_seed(seed, c),
                                         self.cap, norm, marks, call)  # fmt: skip
            index[ref] = c
        done: dict[int, PopulationResult] = {}
        pending = list(index)
        try:
            while pending:
                if progress is not None:
                    progress(len(done), len(bounds))
                ready, pending = self.ray.wait(
                    pending, num_returns=len(pending), timeout=WAIT_SLICE
                )
                done.update((index[ref], self.ray.get(ref)) for ref in ready)
        except BaseException:
            for ref in pending:  # stopped: drop the chunks not yet run
                try:
                    self.ray.cancel(ref)
                except Exception:  # noqa: BLE001 - a chunk already running just finishes
                    pass
            raise
        return PopulationResult.cat([done[c] for c in range(len(bounds))])

    def close(self) -> None:
        for worker in self.workers:
            self.ray.kill(worker)
        self.workers = []
