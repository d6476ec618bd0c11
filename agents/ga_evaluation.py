"""Population evaluation for the Deep GA: one closed-loop engine rollout per generation.

n networks x m episodes run as one engine of ``n * m`` members (member i driven by network
i // m, see :class:`rlwb.policies.PopulationMLP`). Start states are those of the whole
batch's ``reset(seed)``, loaded with ``set_state``: a Ray worker that evaluates a shard
reproduces them from the seed alone (:mod:`rlwb.agents.ga_ray`), so a sharded evaluation
gives the numbers of a local one.

Behaviour characterisation (novelty search): the final ``(x, y)`` where the task reports it
in its step info (``x_position``/``y_position``: the point mazes and the MuJoCo locomotion
tasks; HalfCheetah, Hopper and Walker2d report only x), else the final observation; taken at
each episode's last executed step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from rlwb.engine import Engine, RolloutResult
from rlwb.policies import PopulationMLP

BEHAVIOR_KEYS = ("x_position", "y_position")
GOAL_KEYS = ("success", "distance")  # goal tasks' step info, kept at each episode's end
DEFAULT_HORIZON = 1000  # tasks without a time limit


@dataclass
class PopulationResult:
    """Per network and episode, on the CPU: returns, lengths, behaviours, success."""

    returns: torch.Tensor  # [n, m] float64
    lengths: torch.Tensor  # [n, m] int64
    behaviors: torch.Tensor  # [n, m, d] float64
    goal: dict[str, torch.Tensor]  # [n, m] float64 each: GOAL_KEYS the task reports, at the end

    @property
    def fitness(self) -> torch.Tensor:
        """``[n]`` mean return over the episodes."""
        return self.returns.mean(1)

    @property
    def frames(self) -> int:
        return int(self.lengths.sum())

    @staticmethod
    def cat(parts: list[PopulationResult]) -> PopulationResult:
        return PopulationResult(
            returns=torch.cat([p.returns for p in parts]),
            lengths=torch.cat([p.lengths for p in parts]),
            behaviors=torch.cat([p.behaviors for p in parts]),
            goal={k: torch.cat([p.goal[k] for p in parts]) for k in parts[0].goal},
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


def start_states(engine: Engine, seed: int) -> torch.Tensor:
    """``[B, S]`` start states of ``engine.reset(seed)`` (the engine's whole batch)."""
    engine.reset(seed=seed)
    return engine.get_state()


def run_members(
    engine: Engine, net: PopulationMLP, states: torch.Tensor, episodes: int, cap: int | None
) -> PopulationResult:
    """Roll ``net``'s networks out from ``states`` (``len(states) == engine.num_envs``)."""
    with torch.no_grad():
        result = engine.rollout(net, horizon=horizon_of(engine, cap), init_state=states)
    return summarise(result, episodes)


class EngineCache:
    """Sibling engines by batch size (a GA needs two: population and elite validation)."""

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
    """Evaluates networks on sibling engines of one process (the default)."""

    def __init__(self, spawn: Callable[[int], Engine], net: PopulationMLP, cap: int | None):
        self.engines, self.net, self.cap = EngineCache(spawn), net, cap

    def evaluate(
        self, params: torch.Tensor, genomes: list[list[int]], episodes: int, seed: int
    ) -> PopulationResult:
        engine = self.engines.get(len(params) * episodes)
        self.net.set_params(params)
        return run_members(engine, self.net, start_states(engine, seed), episodes, self.cap)

    def close(self) -> None:
        self.engines.close()
