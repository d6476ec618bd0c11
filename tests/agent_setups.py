"""Every agent class ``rlwb.agents`` exports, each with a small task and config for tests.

The agent list is read from ``rlwb.agents.__all__`` (as ``rlwb list`` does, which leaves the
agents' parts out), so a new agent is covered without editing this file: it runs with its
default config (``<Name>Config()`` beside it in ``rlwb.agents``) on Pendulum-v1 until a
smaller setting is added to :data:`SETUPS`.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

import torch

from rlwb.agent import Agent
from rlwb.engine import Engine, make_engine

MAZE_KW = {"min_goal_distance": 2.0, "max_episode_steps": 50, "terminate_on_success": True}


def agent_classes() -> list[type[Agent]]:
    """The agent classes ``rlwb.agents`` exports, in its ``__all__`` order."""
    agents = importlib.import_module("rlwb.agents")
    found = [getattr(agents, name) for name in agents.__all__]
    return [c for c in found if isinstance(c, type) and issubclass(c, Agent)]


@dataclasses.dataclass
class Setup:
    """A task and a small config for one agent class."""

    task: str = "Pendulum-v1"
    config: Callable[[], Any] | None = None
    """Builds the agent's config (None: its default config)."""
    task_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    backend: str = "torch"
    num_envs: int = 2
    total_steps: int = 40
    learning_starts: int = 10
    requires: str | None = None
    """A module the agent needs (the test skips, naming it, where it is missing)."""

    def engine(self, members: int | None = None, seed: int = 0) -> Engine:
        n = self.num_envs if members is None else members
        return make_engine(self.task, n, backend=self.backend, seed=seed, **self.task_kwargs)


def _small_planner(**kw: Any) -> Any:
    from rlwb.planners.sampling import SamplingConfig

    return SamplingConfig(**{"samples": 8, "horizon": 3, "iterations": 1, "elites": 2, **kw})


def _cem() -> Any:
    from rlwb.agents import CEMMPCConfig

    return CEMMPCConfig(planner=_small_planner())


def _pets() -> Any:
    from rlwb.agents import PETSConfig
    from rlwb.planners.ensemble import EnsembleConfig

    ensemble = EnsembleConfig(members=2, hidden=8, layers=1, particles=2, batch_size=8)
    return PETSConfig(
        planner=_small_planner(), ensemble=ensemble, train_every=10, train_steps=2, capacity=1000
    )


def _safe() -> Any:
    from rlwb.agents import SafeCEMMPCConfig

    return SafeCEMMPCConfig(planner=_small_planner())


def _ddpg() -> Any:
    from rlwb.agents import DDPGConfig

    return DDPGConfig(hidden=(8,), batch_size=4, buffer_size=1000)


def _goal(name: str) -> Callable[[], Any]:
    def build() -> Any:
        config_cls = getattr(importlib.import_module("rlwb.agents"), name)
        return config_cls(hidden=(8,), batch_size=4, buffer_size=1000, probe_every=0)

    return build


def _deep_ga() -> Any:
    from rlwb.agents import DeepGAConfig

    return DeepGAConfig(
        population=4, truncation=2, elite_candidates=2, elite_episodes=1, hidden=(8,),
        horizon=5, noise_table_size=2**16,
    )  # fmt: skip


def _tdmpc() -> Any:
    from rlwb.agents import TDMPCConfig

    return TDMPCConfig.small(
        samples=8, elites=2, iterations=1, horizon=2, batch_size=4, buffer_size=1000,
        schedule_steps=20, latent_dim=4, mlp_dim=8, enc_dim=8,
    )  # fmt: skip


SETUPS: dict[str, Setup] = {
    "CEMMPC": Setup(config=_cem),
    "PETS": Setup(config=_pets),
    "SafeCEMMPC": Setup(task="Quadrotor-Circle-v0", config=_safe, requires="qpsolvers"),
    "DDPG": Setup(config=_ddpg),
    "DDPGHER": Setup("PointMaze-Open-Goal-v0", _goal("DDPGHERConfig"), MAZE_KW),
    "GDG": Setup("PointMaze-Open-Goal-v0", _goal("GDGConfig"), MAZE_KW),
    "DeepGA": Setup(config=_deep_ga, num_envs=1, total_steps=100),
    "TDMPC": Setup(config=_tdmpc),
}


def setup_of(agent_cls: type[Agent]) -> Setup:
    """The small setup of ``agent_cls`` (default config on Pendulum-v1 if it has none)."""
    return SETUPS.get(agent_cls.__name__, Setup())


def config_of(agent_cls: type[Agent]) -> Any:
    setup = setup_of(agent_cls)
    if setup.config is not None:
        return setup.config()
    agents = importlib.import_module("rlwb.agents")
    return getattr(agents, f"{agent_cls.__name__}Config")()


def build(agent_cls: type[Agent], engine: Engine) -> Agent:
    return agent_cls(config_of(agent_cls), engine.spec, torch.device("cpu"))
