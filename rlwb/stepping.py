"""The runner's step of a :class:`rlwb.agent.StepAgent`, usable on its own.

One batched step: uniform random actions before ``learning_starts`` (from the run's own
action generator), else ``act_on(agent, engine, obs, explore=True)``; ``engine.step``;
``observe`` with the true next observation of finished members; ``episode_start`` for
them; then ``update`` at the update-to-data ratio (fractions accumulate).

:func:`rlwb.train.train` drives it with a run folder, logging, evaluation and checkpoints
around it. Tests and benchmarks that want the runner's loop without those (their own
evaluation between steps) iterate :func:`training_steps`, so there is one training loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from rlwb.agent import NUM_UPDATES, StepAgent, act_on
from rlwb.engine import Engine


@dataclass
class Counters:
    """The runner's progress (saved in checkpoints)."""

    env_steps: int = 0
    updates: int = 0
    utd_accumulator: float = 0.0
    episodes: int = 0
    iterations: int = 0
    wall_time: float = 0.0
    last_checkpoint_step: int = -1
    unfinished: str = ""
    """Work of the step ending at ``env_steps`` that a stop interrupted ("update", "eval");
    a resumed run finishes it first."""
    step_before: int = 0
    """``env_steps`` before the current step (what a finished step's boundary work needs)."""


def random_actions(
    engine: Engine, generator: torch.Generator, device: torch.device | str
) -> torch.Tensor:
    """Uniform actions in the task's bounds (``[-1, 1]`` where a bound is infinite), drawn
    on the CPU from ``generator`` and moved to ``device`` (the agent's, as acting does)."""
    spec = engine.spec
    low, high = spec.action_low.cpu(), spec.action_high.cpu()
    low = torch.where(torch.isfinite(low), low, -torch.ones_like(low))
    high = torch.where(torch.isfinite(high), high, torch.ones_like(high))
    u = torch.rand((engine.num_envs, spec.action_dim), generator=generator, dtype=low.dtype)
    return (low + (high - low) * u).to(device)


class StepLoop:
    """A StepAgent on its training engine: :meth:`step` is one batched step of the runner.

    ``obs`` None starts fresh (``engine.reset(seed)``, ``episode_start`` for every member);
    a resumed run passes the checkpoint's observations, counters and action generator."""

    def __init__(
        self,
        agent: StepAgent,
        engine: Engine,
        learning_starts: int = 0,
        updates_per_step: float = 1.0,
        seed: int = 0,
        counters: Counters | None = None,
        action_generator: torch.Generator | None = None,
        obs: torch.Tensor | None = None,
    ) -> None:
        self.agent, self.engine = agent, engine
        self.learning_starts, self.updates_per_step = learning_starts, updates_per_step
        self.counters = counters if counters is not None else Counters()
        self.action_generator = action_generator or torch.Generator().manual_seed(seed)
        self.last_losses: dict[str, float] = {}
        if obs is None:
            obs = engine.reset(seed=seed)
            agent.episode_start(torch.ones(engine.num_envs, dtype=torch.bool, device=agent.device))
        self.obs = obs

    def step(self) -> tuple[list[float], list[int]]:
        """One batched environment step and its updates; returns the returns and lengths of
        the episodes that finished in it."""
        counters, agent, engine = self.counters, self.agent, self.engine
        if counters.env_steps < self.learning_starts:
            action = random_actions(engine, self.action_generator, agent.device)
        else:
            with torch.no_grad():
                action = act_on(agent, engine, self.obs, explore=True)
        next_obs, reward, terminated, truncated, info = engine.step(action)
        done = info["done"]
        mask = done.reshape(done.shape + (1,) * (next_obs.ndim - 1))
        real_next = torch.where(mask, info["final_obs"], next_obs)
        agent.observe(self.obs, action, reward, real_next, terminated, truncated)
        self.obs = next_obs
        counters.env_steps += engine.num_envs
        returns: list[float] = []
        lengths: list[int] = []
        if bool(done.any()):
            agent.episode_start(done)
            returns = info["episode_return"][done].tolist()
            lengths = info["episode_length"][done].tolist()
            counters.episodes += len(returns)
        if counters.env_steps >= self.learning_starts and self.updates_per_step > 0:
            counters.utd_accumulator += self.updates_per_step * engine.num_envs
            n = int(counters.utd_accumulator)
            if n > 0:
                counters.utd_accumulator -= n
                self.run_updates(n)
        return returns, lengths

    def run_updates(self, n: int) -> None:
        """``agent.update(n)``, marked unfinished while it runs: an update that a stop
        interrupts (a catch-up reporting its phase) is finished by ``update(0)`` on resume."""
        self.counters.unfinished = "update"
        losses = dict(self.agent.update(n) or {})
        self.counters.unfinished = ""
        self.counters.updates += int(losses.pop(NUM_UPDATES, n))
        self.last_losses = losses


def training_steps(
    agent: StepAgent,
    engine: Engine,
    total_steps: int,
    learning_starts: int = 0,
    updates_per_step: float = 1.0,
    seed: int = 0,
) -> Iterator[int]:
    """The runner's training loop (``TrainConfig``'s fields of the same names) with no run
    folder: yields the env steps (summed over members) after each batched step, until
    ``total_steps``. Seed torch (``rlwb.checkpoint.seed_everything``) before building the
    agent, as the runner does, for the runner's numbers."""
    loop = StepLoop(agent, engine, learning_starts, updates_per_step, seed)
    while loop.counters.env_steps < total_steps:
        loop.step()
        yield loop.counters.env_steps
