"""Deep GA population evaluation sharded over Ray actors (``pip install rlwb[ray]``).

Each actor owns its engines (built from the driver engine's recipe: task, backend, dtype,
task arguments, device), its own copy of the noise table and a cache of the networks it
built last generation. Per generation the driver sends each actor a contiguous shard of
seed lists and the generation's episode seed; the actor rebuilds its networks from the
seeds (each distinct parent once, from its cache or its seed list, then one mutation
per child), reproduces its shard's start
states from the seed (the same whole-batch reset the local evaluator does) and returns the
shard's returns, lengths, behaviours and goal numbers. Only seeds and fitness cross the
wire, never weights or states, and the numbers equal a one-process evaluation (a test
checks this with ``ray.init(num_cpus=2)``).

With ``num_workers`` actors the driver calls ``ray.init()`` if Ray is not initialised yet;
to use a cluster, call ``ray.init(address=...)`` before training.
"""

from __future__ import annotations

from typing import Any

import torch

from rlwb.agents.ga_evaluation import EngineCache, PopulationResult, run_members, start_states
from rlwb.agents.ga_genome import Genomes
from rlwb.engine import Engine, make_engine
from rlwb.errors import ConfigError
from rlwb.policies import PopulationMLP


class ShardWorker:
    """What one Ray actor holds; plain Python, so it also runs (and is tested) in-process."""

    def __init__(self, factory: dict[str, Any], net: dict[str, Any], table: dict[str, Any]):
        torch.set_num_threads(1)
        self.factory = factory
        self.engines = EngineCache(lambda n: make_engine(num_envs=n, **self.factory))
        self.net = PopulationMLP(**net)
        self.genomes = Genomes(self.net.num_params, self.net.init_scale(), **table)
        self.cache: dict[tuple[int, ...], torch.Tensor] = {}
        self._last: dict[tuple[int, ...], torch.Tensor] = {}

    def build(self, genomes: list[list[int]]) -> torch.Tensor:
        """Networks of ``genomes``: each distinct parent is taken from the cache or rebuilt
        once, then every child is its parent plus one mutation (bit-identical to rebuilding
        the child's whole list). The cache keeps the networks of the last two calls (the
        population and the elite candidates, i.e. the next generation's parents)."""
        built: dict[tuple[int, ...], torch.Tensor] = {}
        missing = sorted({tuple(g[:-1]) for g in genomes if len(g) > 1} - self.cache.keys())
        if missing:
            rows = self.genomes.build([list(m) for m in missing])
            built.update(zip(missing, rows, strict=True))
        known = {**self.cache, **built}
        params = torch.empty(len(genomes), self.net.num_params, device=self.genomes.table.device)
        first = [i for i, g in enumerate(genomes) if len(g) == 1]
        later = [i for i, g in enumerate(genomes) if len(g) > 1]
        if first:
            params[first] = self.genomes.init([genomes[i][0] for i in first])
        if later:
            parents = torch.stack([known[tuple(genomes[i][:-1])] for i in later])
            params[later] = self.genomes.mutate(parents, [genomes[i][-1] for i in later])
        current = {tuple(g): params[i] for i, g in enumerate(genomes)}
        self.cache, self._last = {**self._last, **current}, current
        return params

    def evaluate(
        self, genomes: list[list[int]], first: int, total: int, episodes: int, seed: int,
        cap: int | None,
    ) -> PopulationResult:  # fmt: skip
        """Networks ``first .. first + len(genomes)`` of a ``total``-network evaluation."""
        full = self.engines.get(total * episodes)
        states = start_states(full, seed)[first * episodes : (first + len(genomes)) * episodes]
        engine = self.engines.get(len(genomes) * episodes)
        self.net.set_params(self.build(genomes))
        return run_members(engine, self.net, states, episodes, cap)


def shards(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous (start, stop) ranges covering ``range(n)``, sizes within one."""
    parts = max(1, min(parts, n))
    bounds = [n * k // parts for k in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


class RayEvaluator:
    """The Deep GA's evaluator interface over ``num_workers`` Ray actors."""

    def __init__(self, engine: Engine, config: Any, num_workers: int) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "DeepGAConfig.num_workers > 0 needs Ray: pip install 'rlwb[ray]'"
            ) from None
        if not ray.is_initialized():
            ray.init()
        self.ray, self.cap = ray, config.horizon
        factory = dict(engine._factory)
        factory["device"] = str(factory["device"])
        spec = engine.spec
        net = dict(
            obs_dim=int(torch.tensor(spec.observation_shape).prod()),
            action_dim=spec.action_dim,
            hidden=tuple(config.hidden),
            population=1,
            action_low=spec.action_low.cpu(),
            action_high=spec.action_high.cpu(),
            activation=config.activation,
            device=factory["device"],
        )
        table = dict(
            sigma=config.sigma,
            table_size=config.noise_table_size,
            table_seed=config.noise_table_seed,
            device=factory["device"],
        )
        # Actors run on the driver's device kind; on CUDA they share the GPUs Ray sees.
        gpus = 1.0 / num_workers if torch.device(factory["device"]).type == "cuda" else 0
        actor = ray.remote(ShardWorker).options(num_gpus=gpus)
        self.workers = [actor.remote(factory, net, table) for _ in range(num_workers)]

    def evaluate(
        self, params: torch.Tensor, genomes: list[list[int]], episodes: int, seed: int
    ) -> PopulationResult:
        """Same as the local evaluator; ``params`` stay on the driver."""
        n = len(genomes)
        futures = [
            worker.evaluate.remote(genomes[lo:hi], lo, n, episodes, seed, self.cap)
            for worker, (lo, hi) in zip(self.workers, shards(n, len(self.workers)), strict=False)
        ]
        return PopulationResult.cat(self.ray.get(futures))

    def close(self) -> None:
        for worker in self.workers:
            self.ray.kill(worker)
        self.workers = []
