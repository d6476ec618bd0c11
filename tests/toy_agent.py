"""Tiny stand-ins for runtime tests: a 1-D linear engine and two small agents.

Importing registers the ``toy`` backend and the ``Toy-v0`` task, so checkpoints of these
agents load in a fresh process (``PYTHONPATH`` = repository root).

Toy-v0: ``x' = x + 0.5 a``, reward ``-x'^2``, episodes of 20 steps, terminated when
``|x'| > 3``; the best policy drives x to 0 (``a = -2x``), a zero policy keeps ``-x^2``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch

from rlwb import tasks
from rlwb.agent import IterationAgent, StepAgent
from rlwb.engine import BACKENDS, Engine, EngineSpec

BACKENDS.setdefault("toy", "tests.toy_agent:ToyEngine")
tasks.register(
    tasks.TaskEntry(
        id="Toy-v0",
        backends=("toy",),
        loader="tests.toy_agent:ToyEngine",
        family="test",
        description="1-D linear system for runtime tests",
    )
)


class ToyEngine(Engine):
    backend = "toy"

    def __init__(
        self, task: str, num_envs: int = 1, device=None, seed=None, dtype=torch.float32, **kw
    ):  # noqa: E501
        self.task_id, self.num_envs = task, num_envs
        self.device = torch.device(device or "cpu")
        self.dtype = dtype
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.max_episode_steps = int(kw.get("max_episode_steps", 20))
        self.dt = 0.1
        self.x = torch.zeros(num_envs, dtype=torch.float64, device=self.device)
        self._init_bookkeeping(seed)

    def _member_obs(self, members: torch.Tensor) -> torch.Tensor:
        return self.x[members, None].to(self.dtype)

    def _reset_members(self, members: torch.Tensor) -> torch.Tensor:
        u = torch.rand(len(members), generator=self.generator, dtype=torch.float64)
        self.x[members] = (2 * u - 1).to(self.device)
        return self._member_obs(members)

    def _step_members(self, action: torch.Tensor):  # noqa: ANN202
        self.x = self.x + 0.5 * action[:, 0].to(torch.float64)
        reward = -(self.x**2)
        terminated = self.x.abs() > 3
        return self.x[:, None].to(self.dtype), reward.to(self.dtype), terminated, {}

    def _get_physics_state(self) -> torch.Tensor:
        return self.x[:, None].clone()

    def _set_physics_state(self, state: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        self.x[members] = state[:, 0].to(self.device)
        return self._member_obs(members)


@dataclass
class ToyConfig:
    lr: float = 0.05
    batch_size: int = 16
    noise: float = 0.3
    capacity: int = 10_000
    hidden: tuple[int, ...] = field(default=(8,))
    eval_noise: float = 0.0
    """Noise from the global torch RNG in deterministic actions too (as a sampling planner
    draws when it plans): evaluation must not take it from training."""


class ToyAgent(StepAgent):
    """A small policy fitted through Toy-v0's known model (``x' = x + 0.5 a`` on the first
    observation and action entries; meaningless but harmless on other tasks). Random
    minibatches and exploration noise use the global torch RNG, so exact resume needs the
    runner to restore it. ``TOY_SLEEP`` (seconds per update) slows a run for kill tests,
    ``TOY_EVAL_SLEEP`` (seconds per deterministic action) its evaluations."""

    def __init__(self, config: ToyConfig, spec: EngineSpec, device: torch.device) -> None:
        self.config, self.spec, self.device = config, spec, device
        obs_dim = int(np.prod(spec.observation_shape))
        self.policy = torch.nn.Sequential(
            torch.nn.Linear(obs_dim, config.hidden[0]),
            torch.nn.Tanh(),
            torch.nn.Linear(config.hidden[0], spec.action_dim),
        ).to(device)
        self.optim = torch.optim.Adam(self.policy.parameters(), lr=config.lr)
        self.obs = torch.zeros(config.capacity, obs_dim, device=device)
        self.size = 0
        self.act_calls = 0
        self.episode_starts = 0

    def act(self, obs: torch.Tensor, explore: bool = False) -> torch.Tensor:
        low, high = self.spec.action_low, self.spec.action_high
        action = torch.tanh(self.policy(obs.flatten(1)))
        if explore:
            self.act_calls += 1
            action = action + self.config.noise * torch.randn_like(action)
        elif self.config.eval_noise > 0:
            action = action + self.config.eval_noise * torch.randn_like(action)
        if not explore:
            time.sleep(float(os.environ.get("TOY_EVAL_SLEEP", "0")))
        return (low + (action.clamp(-1, 1) + 1) * (high - low) / 2).to(obs.dtype)

    def observe(self, obs, action, reward, next_obs, terminated, truncated) -> None:  # noqa: ANN001
        n = obs.shape[0]
        idx = (self.size + torch.arange(n)) % self.config.capacity
        self.obs[idx] = next_obs.flatten(1)
        self.size += n

    def episode_start(self, members: torch.Tensor) -> None:
        self.episode_starts += int(members.sum())

    def update(self, num_updates: int) -> dict[str, float]:
        for _ in range(num_updates):
            high = min(self.size, self.config.capacity)
            batch = self.obs[torch.randint(high, (self.config.batch_size,))]
            loss = (batch[:, :1] + 0.5 * torch.tanh(self.policy(batch))[:, :1]).pow(2).mean()
            self.optim.zero_grad()
            loss.backward()
            self.optim.step()
            time.sleep(float(os.environ.get("TOY_SLEEP", "0")))
        return {"policy_loss": loss.item(), "buffer_size": float(self.size)}

    def state_dict(self) -> dict:
        return {
            "policy": self.policy.state_dict(),
            "optim": self.optim.state_dict(),
            "obs": self.obs.clone(),
            "size": self.size,
            "act_calls": self.act_calls,
            "episode_starts": self.episode_starts,
        }

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optim.load_state_dict(state["optim"])
        self.obs.copy_(state["obs"])
        self.size = state["size"]
        self.act_calls = state["act_calls"]
        self.episode_starts = state["episode_starts"]


@dataclass
class ToySearchConfig:
    sigma: float = 0.5


class ToySearch(IterationAgent):
    """Random search over a gain k (``a = -k x``): one perturbed gain per engine member."""

    def __init__(self, config: ToySearchConfig, spec: EngineSpec, device: torch.device) -> None:
        self.config, self.spec, self.device = config, spec, device
        self.k = torch.zeros(1, dtype=torch.float64)
        self.env_steps = 0
        self.generator = torch.Generator().manual_seed(123)

    def act(self, obs: torch.Tensor, explore: bool = False) -> torch.Tensor:
        return (-self.k.to(obs) * obs).clamp(-1, 1)

    def iterate(self, engine: Engine) -> dict[str, float]:
        n = engine.num_envs
        gains = self.k + self.config.sigma * torch.randn(
            n, generator=self.generator, dtype=torch.float64
        )
        gains[0] = self.k[0]
        engine.reset()
        result = engine.rollout(lambda obs: (-gains[:, None].to(obs) * obs).clamp(-1, 1))
        self.env_steps += int(result.lengths.sum())
        self.k = gains[result.returns.argmax()].reshape(1)
        return {"best_return": float(result.returns.max()), "gain": float(self.k)}

    def state_dict(self) -> dict:
        return {
            "k": self.k.clone(),
            "env_steps": self.env_steps,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.k = state["k"].clone()
        self.env_steps = state["env_steps"]
        self.generator.set_state(state["generator"])
