"""CEM-MPC with the true simulator (and MPPI, iCEM or random shooting by config).

Every control step (or every ``replan_every`` steps) each real member's state is cloned
into ``samples`` members of a sibling engine (:class:`rlwb.planners.EngineModel`) and the
sampling planner (:mod:`rlwb.planners.sampling`) optimises an open-loop action sequence of
``horizon`` steps; the first action is executed (receding horizon). All real members plan in
one batched call. The agent learns nothing: ``observe``/``update`` only report planning time.

It plans with the real engine's state, so ``needs_engine_state`` is True: the runner,
evaluation, ``rlwb eval`` and ``rlwb.agent.act_on`` pass ``state=engine.get_state()``. A
member starts without a warm start at ``episode_start`` (the runner and evaluation call it)
and, for loops that do not, when its state's elapsed-step count becomes 0. Inside
``engine.rollout`` (how evaluation runs) that count stays at 0 for the whole episode, so
a count of 0 starts an episode only where the previous call's count was not 0: taking every
such step as a new episode drops the warm start and the kept elites at each step, and the
pole fell in evaluation (121 and 862 steps at seed 11) while the same planner's training
episodes survived.

Deviations / choices: ``explore`` is ignored (MPC acts the same in training and evaluation);
with ``replan_every = k > 1`` the plan's next actions are executed for k steps and the warm
start is shifted by k; planning is undiscounted over the horizon (PETS) and a member that
terminates in the model collects no more reward (which is what keeps a pendulum up).

On survival-only rewards (InvertedPendulum) every plan that survives the horizon scores the
same, so nothing in the return keeps the cart off its rail at +-1 m; the papers' flat-std CEM
and MPPI drift into it (0-40% of 1000-step episodes survived). ``pendulum_preset`` (what
``rlwb train cem_mpc_mujoco --train.task InvertedPendulum-v5`` picks) adds documented
choices: ``rest_tie_break`` (a terminal value below one step's reward that orders equally
long survivors by how near they end to rest: the deciding one, it keeps the cart within
|x| < 0.4), ``std_ramp`` (small changes early in the warm-started plan, which the unstable
pole amplifies), kept elites and executing the best sequence, at CEM 30 x 20 x 2. Every
episode of the seeds measured in ``benchmarks/RESULTS.md`` survived 1000 steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from rlwb import agent_kit as kit
from rlwb.agent import StepAgent
from rlwb.engine.base import EngineSpec
from rlwb.errors import ConfigError
from rlwb.planners.models import EngineModel
from rlwb.planners.sampling import SamplingConfig, SamplingPlanner

FORMAT_VERSION = 1


@dataclass
class CEMMPCConfig:
    """True-model MPC settings. Defaults: a CEM small enough for 2 CPU cores."""

    planner: SamplingConfig = field(
        default_factory=lambda: SamplingConfig(
            samples=100, horizon=20, iterations=3, elites=10, momentum=0.1, init_std=0.5
        )
    )
    replan_every: int = 1
    """Execute this many actions of each plan before planning again."""
    seed: int = 0
    """Seed of the planner's sampling generator (and the sibling engines)."""
    torch_threads: int = 1
    """torch.set_num_threads at construction on CPU (0: leave it): small tensor ops, and
    intra-op threads on a shared machine wait on each other (see DDPGConfig)."""
    rest_tie_break: float = 0.0
    """A deviation for survival-only rewards, off (0) by default: a terminal value
    ``-w (1 - exp(-mean(final_obs^2)))`` in ``(-w, 0]``, ``w < 1``, added to candidates still
    alive at the horizon's end. With rewards of 1 per step it never outweighs one more
    step survived: it only orders plans that survive equally long, preferring the one that
    ends nearer the zero observation (InvertedPendulum: the cart centred, the pole upright
    and at rest). See :func:`rest_value`."""

    def validate(self) -> None:
        self.planner.validate()
        if not 0 <= self.rest_tie_break < 1:
            raise ConfigError(f"rest_tie_break must lie in [0, 1), got {self.rest_tie_break!r}")
        if isinstance(self.replan_every, bool) or not isinstance(self.replan_every, int):
            raise ConfigError(f"replan_every must be an integer, got {self.replan_every!r}")
        if not 1 <= self.replan_every <= self.planner.horizon:
            raise ConfigError(
                f"replan_every must lie in [1, horizon={self.planner.horizon}], "
                f"got {self.replan_every}"
            )


def pendulum_preset() -> CEMMPCConfig:
    """InvertedPendulum-v5 (survival reward only): CEM 30 x 20 x 2 with ``std_ramp``, kept
    elites, the best sequence executed and the rest tie-break (benchmarks/RESULTS.md)."""
    planner = SamplingConfig(
        method="cem", samples=30, horizon=20, iterations=2, elites=6, init_std=0.4,
        min_std=0.02, std_ramp=8.0, keep_elites=0.34, execute="best",
    )  # fmt: skip
    return CEMMPCConfig(planner=planner, rest_tie_break=0.5)


def rest_value(weight: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Terminal value ``final_obs [M, ...] -> [M]`` in ``(-weight, 0]``: minus ``weight``
    times a saturating distance of the final observation from zero."""

    def value(final_obs: torch.Tensor) -> torch.Tensor:
        sq = final_obs.reshape(final_obs.shape[0], -1).square().mean(1)
        return -weight * (1 - torch.exp(-sq))

    return value


class PlanTimer:
    """Wall time per control step spent planning, averaged between two reports."""

    def __init__(self) -> None:
        self.total, self.count = 0.0, 0

    def add(self, seconds: float) -> None:
        self.total += seconds
        self.count += 1

    def report(self) -> dict[str, float]:
        if self.count == 0:
            return {}
        out = {"plan_ms_per_step": 1000 * self.total / self.count}
        self.total, self.count = 0.0, 0
        return out


class CEMMPC(StepAgent):
    """Sampling MPC over the true dynamics; one batched plan for all members."""

    needs_engine_state: ClassVar[bool] = True

    def __init__(self, config: CEMMPCConfig, spec: EngineSpec, device: torch.device) -> None:
        config.validate()
        self.config, self.spec, self.device = config, spec, torch.device(device)
        kit.apply_torch_threads(config.torch_threads, self.device)
        self.planner = SamplingPlanner(
            config.planner, spec.action_low, spec.action_high, self.device, seed=config.seed
        )
        value = rest_value(config.rest_tie_break) if config.rest_tie_break > 0 else None
        self.model = EngineModel(spec, terminal_value=value, seed=config.seed)
        self.timer = PlanTimer()
        self._plan: torch.Tensor | None = None  # [B, H, A] last plan, task units
        self._since = 0  # steps executed from the current plan
        self._elapsed: torch.Tensor | None = None  # [B] elapsed steps at the last call

    def episode_start(self, members: torch.Tensor) -> None:
        """Members in ``members`` start an episode: no warm start, replan at the next act."""
        self.planner.reset(members.to(self.device))
        self._plan, self._elapsed = None, None

    def act(
        self, obs: torch.Tensor, explore: bool = False, state: torch.Tensor | None = None
    ) -> torch.Tensor:
        if state is None:
            raise ValueError(
                "CEMMPC plans with the true simulator: call act(obs, state=engine.get_state()) "
                "or rlwb.agent.act_on(agent, engine, obs)"
            )
        b, k = state.shape[0], self.config.replan_every
        elapsed = state[:, -1]
        fresh = elapsed == 0  # the member starts an episode ...
        if self._elapsed is not None and self._elapsed.shape == elapsed.shape:
            # ... unless it was at 0 already: inside ``engine.rollout`` (evaluation,
            # ``rlwb eval``) the elapsed count stays at its value before the rollout
            fresh = fresh & (self._elapsed != 0)
        self._elapsed = elapsed.clone()
        stale = self._plan is None or self._plan.shape[0] != b or self._since >= k
        if not stale and bool(fresh.any()):
            stale = True
        if stale:
            if self._plan is not None and self._plan.shape[0] == b and self._since > 1:
                self.planner.advance(self._since - 1)
            self.planner.reset(fresh.to(self.device))
            start = time.perf_counter()
            self.planner.plan(self.model, state)
            self.timer.add(time.perf_counter() - start)
            self._plan, self._since = self.planner.last_plan, 0
        else:
            self.timer.add(0.0)
        action = self._plan[:, self._since]
        self._since += 1
        return action.to(self.spec.action_low.dtype)

    def observe(self, obs, action, reward, next_obs, terminated, truncated) -> None:
        """Nothing to learn from: the model is the simulator."""

    def update(self, num_updates: int) -> dict[str, float]:
        return self.timer.report()

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "planner": self.planner.state_dict(),
            "plan": self._plan,
            "since": self._since,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        kit.check_format(state, FORMAT_VERSION, "CEMMPC", oldest=FORMAT_VERSION)
        self.planner.load_state_dict(state["planner"])
        plan = state["plan"]
        self._plan = None if plan is None else plan.to(self.device)
        self._since = int(state["since"])
