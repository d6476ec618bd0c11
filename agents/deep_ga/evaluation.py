"""Population evaluation for the Deep GA: closed-loop engine rollouts in fixed chunks.

n networks x m episodes are evaluated in chunks of ``chunk`` networks (the last one
smaller); a chunk runs as one engine of ``chunk * m`` members (member i driven by network
i // m, see :class:`rlwb.policies.PopulationMLP`) from the start states of that engine's
``reset(chunk_seed(seed, c))``. The chunks depend only on the population, ``chunk`` and the
seed, never on who evaluates them: one process runs them one after another, Ray actors
(:mod:`rlwb.agents.deep_ga.ray_shards`) a share each, and every chunk is the same computation
either way (same engine size, same batches of networks, same start states), so the numbers are
equal bit for bit whatever batch-size-dependent kernels the matrix products pick. Between chunks
the evaluation reports progress (``progress(done, total)``), where the run may stop it.

Behaviour characterisation (novelty search): the final ``(x, y)`` where the task reports it
in its step info (``x_position``/``y_position``: the point mazes and the MuJoCo locomotion
tasks; HalfCheetah, Hopper and Walker2d report only x), else the final observation; taken at
each episode's last executed step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from rlwb.agents.deep_ga.obs_norm import ObsRecorder, ObsStat
from rlwb.engine import Engine, RolloutResult
from rlwb.policies import PopulationMLP

BEHAVIOR_KEYS = ("x_position", "y_position")
GOAL_KEYS = ("success", "distance")  # goal tasks' step info, kept at each episode's end
DEFAULT_HORIZON = 1000  # tasks without a time limit

#: ``progress(done, total)``: chunks evaluated so far; may raise to stop the evaluation.
Progress = Callable[[int, int], None]
#: ``(mean, std)`` observation normalisation of every network (None: none).
Norm = tuple[torch.Tensor, torch.Tensor] | None


@dataclass
class PopulationResult:
    """Per network and episode, on the CPU: returns, lengths, behaviours, success."""

    returns: torch.Tensor  # [n, m] float64
    lengths: torch.Tensor  # [n, m] int64
    behaviors: torch.Tensor  # [n, m, d] float64
    goal: dict[str, torch.Tensor]  # [n, m] float64 each: GOAL_KEYS the task reports, at the end
    obs_stat: ObsStat | None = None  # observations of the recorded episodes

    @property
    def fitness(self) -> torch.Tensor:
        """``[n]`` mean return over the episodes."""
        return self.returns.mean(1)

    @property
    def frames(self) -> int:
        return int(self.lengths.sum())

    @staticmethod
    def cat(parts: list[PopulationResult]) -> PopulationResult:
        """The parts in order (their observation sums added in that order)."""
        stats = [p.obs_stat for p in parts if p.obs_stat is not None]
        total = stats[0] if stats else None
        for stat in stats[1:]:
            total = total.plus(stat)
        return PopulationResult(
            returns=torch.cat([p.returns for p in parts]),
            lengths=torch.cat([p.lengths for p in parts]),
            behaviors=torch.cat([p.behaviors for p in parts]),
            goal={k: torch.cat([p.goal[k] for p in parts]) for k in parts[0].goal},
            obs_stat=total,
        )


def _at_last_step(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    last = (lengths - 1).clamp(min=0).unsqueeze(1)
    return values.gather(1, last).squeeze(1)


def summarise(result: RolloutResult, episodes: int) -> PopulationResult:
    """A rollout of ``n * episodes`` members as per-network, per-episode numbers."""
    infos = result.infos or {}
    keys = [k for k in BEHAVIOR_KEYS if k in infos]
    if keys:
        behaviors = torch.stack([_at_last_step(infos[k], result.lengths) for k in keys], 1)
    else:
        behaviors = result.final_obs.flatten(1)
    goal = {
        k: _at_last_step(infos[k], result.lengths).to(torch.float64).cpu().reshape(-1, episodes)
        for k in GOAL_KEYS
        if k in infos
    }
    return PopulationResult(
        returns=result.returns.to(torch.float64).cpu().reshape(-1, episodes),
        lengths=result.lengths.cpu().reshape(-1, episodes),
        behaviors=behaviors.to(torch.float64).cpu().reshape(-1, episodes, behaviors.shape[1]),
        goal=goal,
    )


def horizon_of(engine: Engine, cap: int | None) -> int:
    """Episode length: the task's time limit, capped at ``cap``."""
    limit = engine.max_episode_steps or DEFAULT_HORIZON
    return min(limit, cap) if cap else limit


def start_states(engine: Engine, seed: int) -> torch.Tensor | None:
    """``[B, S]`` start states of ``engine.reset(seed)`` (the engine's whole batch); None
    where the engine cannot read states (EnvPool), whose rollout starts from that reset."""
    engine.reset(seed=seed)
    try:
        return engine.get_state()
    except NotImplementedError:
        return None


def chunk_bounds(n: int, chunk: int) -> list[tuple[int, int]]:
    """``(lo, hi)`` network ranges of ``chunk`` networks each (the last one smaller)."""
    return [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)]


def chunk_seed(seed: int, index: int) -> int:
    """The reset seed of chunk ``index`` of an evaluation seeded with ``seed`` (the first
    chunk's is ``seed``: an evaluation in one chunk starts where one engine reset would)."""
    return (int(seed) + 1_000_003 * int(index)) % 2**62


def run_chunk(
    engines: EngineCache,
    net: PopulationMLP,
    params: torch.Tensor,
    episodes: int,
    seed: int,
    cap: int | None,
    record: torch.Tensor | None = None,
) -> PopulationResult:
    """Roll networks ``params`` out for ``episodes`` episodes each from the start states of
    ``seed``, summing the observations of the members ``record`` marks (bool, or None)."""
    engine = engines.get(len(params) * episodes)
    net.set_params(params)
    states = start_states(engine, seed)
    policy = ObsRecorder(net, record) if record is not None and bool(record.any()) else net
    with torch.no_grad():
        result = engine.rollout(policy, horizon=horizon_of(engine, cap), init_state=states)
    out = summarise(result, episodes)
    out.obs_stat = policy.stat if isinstance(policy, ObsRecorder) else None
    return out


class EngineCache:
    """Sibling engines by batch size (a GA needs a few: chunks of the population and of the
    elite validation)."""

    def __init__(self, spawn: Callable[[int], Engine]) -> None:
        self.spawn = spawn
        self.engines: dict[int, Engine] = {}

    def get(self, num_envs: int) -> Engine:
        if num_envs not in self.engines:
            self.engines[num_envs] = self.spawn(num_envs)
        return self.engines[num_envs]

    def close(self) -> None:
        for engine in self.engines.values():
            engine.close()
        self.engines.clear()


class LocalEvaluator:
    """Evaluates networks chunk by chunk on sibling engines of one process (the default)."""

    def __init__(
        self, spawn: Callable[[int], Engine], net: PopulationMLP, cap: int | None, chunk: int
    ) -> None:
        self.engines, self.net, self.cap, self.chunk = EngineCache(spawn), net, cap, chunk

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
        """Fitness of networks ``params`` (``genomes`` are their seed lists); ``record``
        (bool ``[n * episodes]``) marks the episodes whose observations are summed."""
        self.net.set_obs_norm(*(norm or (None, None)))
        bounds = chunk_bounds(len(params), self.chunk)
        parts = []
        for c, (lo, hi) in enumerate(bounds):
            if progress is not None:
                progress(c, len(bounds))
            marks = None if record is None else record[lo * episodes : hi * episodes]
            parts.append(run_chunk(self.engines, self.net, params[lo:hi], episodes,
                                   chunk_seed(seed, c), self.cap, marks))  # fmt: skip
        return PopulationResult.cat(parts)

    def close(self) -> None:
        self.engines.close()
