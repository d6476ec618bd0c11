"""What the training runner expects of an agent.

Agents hold only their algorithm. The runner (``rlwb.train``) owns the loop: engine steps,
when to update, evaluation, logging, checkpoints. Two shapes of agent exist:

* :class:`StepAgent` (DDPG, TD-MPC, GDG, MPC agents): the runner calls ``act`` on a batch
  of observations, steps the engine, hands the transition to ``observe`` and calls
  ``update`` at the configured update-to-data ratio.
* :class:`IterationAgent` (Deep GA, other population methods): the runner calls
  ``iterate(engine)`` (one generation), which uses ``engine.rollout`` itself.

Both are built as ``AgentClass(config, spec, device)`` where ``config`` is the agent's
dataclass and ``spec`` the :class:`rlwb.engine.EngineSpec` of the training engine, so a
checkpoint (which stores the class path, config and spec) rebuilds any agent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from rlwb.engine.base import Engine, EngineSpec

#: Key of ``StepAgent.update``'s result that reports the gradient updates actually run.
NUM_UPDATES = "num_updates"

#: ``reporter(what, done, total) -> stop``: how the runner shows a long phase's progress and
#: tells the agent that SIGINT/SIGTERM asked the run to stop.
PhaseReporter = Callable[[str, int, int], bool]


class PhaseInterrupted(Exception):
    """A long phase (catch-up updates, a generation, a long evaluation) stopped because the
    run was asked to stop. The agent that raises it has kept its state consistent (what
    ``state_dict`` returns now resumes exactly), so the runner checkpoints and exits."""


class Agent(ABC):
    """Common part: construction, acting, state for checkpoints."""

    config: Any
    spec: EngineSpec
    device: torch.device

    #: True for agents that plan with the true simulator: they are then called as
    #: ``act(obs, explore, state=engine.get_state())`` (see :func:`act_on`).
    needs_engine_state: ClassVar[bool] = False

    #: Set by the runner for the length of a run (None outside one: :meth:`phase` is free).
    phase_reporter: PhaseReporter | None = None

    def phase(self, what: str, done: int, total: int) -> None:
        """Report ``done`` of ``total`` units of a long phase named ``what``; raises
        :class:`PhaseInterrupted` when the run was asked to stop. Call it between units of
        work, at points where the agent's state is consistent."""
        reporter = self.phase_reporter
        if reporter is not None and reporter(what, done, total):
            raise PhaseInterrupted(what)

    @abstractmethod
    def __init__(self, config: Any, spec: EngineSpec, device: torch.device) -> None: ...

    @abstractmethod
    def act(self, obs: torch.Tensor, explore: bool = False) -> torch.Tensor:
        """``obs[B, ...] -> action[B, A]`` on the agent's device; deterministic unless
        ``explore``."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (networks, optimizers, replay, RNG, counters)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output. Checkpoints are loaded onto the CPU: move
        tensors to ``self.device`` (``Module.load_state_dict`` and ``copy_`` do)."""

    def policy_state_dict(self) -> dict[str, Any]:
        """Everything ``act(obs, explore=False)`` needs, nothing more (no replay, no
        optimizer): ``policy.pt`` holds it, and the runner evaluates a second agent loaded
        with it. Default: everything."""
        return self.state_dict()

    def load_policy_state_dict(self, state: dict[str, Any]) -> None:
        self.load_state_dict(state)

    def metrics(self) -> dict[str, float]:
        """Scalars the agent measured since the last call, keyed by their full TensorBoard
        tag (``losses/critic``, ``gdg/probe_distance``, ``ga/elite_return`` ...). The runner
        drains it at every log step and logs each value under its tag (``update()``'s and
        ``iterate()``'s return values stay logged as before). Default: ``{}``."""
        return {}

    def policy_network(self) -> PolicyNetwork | None:
        """The deterministic policy as one torch module (what ``rlwb export`` writes as
        ONNX or TorchScript), or None for an agent whose actions come from planning at every
        step rather than from a network. Default: None."""
        return None


class StepAgent(Agent):
    """An agent trained from a stream of transitions."""

    @abstractmethod
    def observe(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        reward: torch.Tensor,
        next_obs: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
    ) -> None:
        """Store one batched transition. ``next_obs`` is the true next observation (the final
        observation for members that finished, not the autoreset one)."""

    @abstractmethod
    def update(self, num_updates: int) -> dict[str, float]:
        """Run ``num_updates`` gradient updates; return scalars to log under ``losses/``.
        An agent that runs a different number (TD-MPC's catch-up on the seed steps) says how
        many under the key :data:`NUM_UPDATES`: the runner counts that, and does not log it.
        An agent whose updates report a :meth:`phase` keeps what a stop left undone and runs
        it in the next call: a resumed runner calls ``update(0)`` first to finish it."""

    def episode_start(self, members: torch.Tensor) -> None:  # noqa: B027 - optional hook
        """Members (bool mask ``[B]``) that start a new episode (e.g. reset OU noise)."""


class IterationAgent(Agent):
    """An agent trained in whole iterations (a GA generation) over the engine."""

    step_budget: int | None = None
    """Env steps the whole run may use (the runner sets its ``total_steps``; None: no
    limit). An agent that honours it never goes past it and returns None from ``iterate``
    once no iteration fits in what is left, which ends the run."""

    @abstractmethod
    def iterate(self, engine: Engine) -> dict[str, float] | None:
        """One iteration; returns scalars to log (None: no iteration fits the budget left,
        nothing was done). Must count env steps it used in ``self.env_steps``."""


@dataclass
class PolicyNetwork:
    """An agent's policy as a module ``obs[B, ...] float32 -> action[B, A]``, self-contained
    (observation normalisation and action scaling inside it, no Python state between
    calls) so that it exports to ONNX and TorchScript.

    ``differs_from_act`` is None when ``module(obs)`` equals ``act(obs, explore=False)``
    (the export checks it does); otherwise one sentence saying what ``act`` adds around
    the network (a planner, bridge points), printed with the export."""

    module: nn.Module
    differs_from_act: str | None = None


class ScaledPolicy(nn.Module):
    """``net(obs)`` in [-1, 1]^A mapped to the action bounds: ``u * scale + bias`` (the
    :func:`~rlwb.agent_kit.unit_action_map` of the agent)."""

    def __init__(self, net: nn.Module, scale: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("scale", scale.detach().clone())
        self.register_buffer("bias", bias.detach().clone())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs) * self.scale + self.bias


def act_on(agent: Agent, engine: Engine, obs: torch.Tensor, explore: bool = False) -> torch.Tensor:
    """The agent's action for the engine's members, handing it the engine's state when it
    plans with the true simulator. The runner, evaluation and ``rlwb eval`` all act
    through here; a user's own loop can too."""
    obs = obs.to(agent.device)
    if agent.needs_engine_state:
        return agent.act(obs, explore=explore, state=engine.get_state())
    return agent.act(obs, explore=explore)
