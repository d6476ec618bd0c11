"""Safe learning-based CEM-MPC (Zheng, Yang, Wu, Pan, Cheng 2022; arXiv 2102.12124), quadrotor.

Each control step, for every engine member at once:

1. **Learn.** The transition since the last call, ``(v, t, u) -> v'``, gives the residual
   acceleration ``y = (v' - v) / dt - u`` (exactly the wind's effect under the task's
   integrator); it joins the member's sliding-window GP (``rlwb.planners.gp``) with input
   ``(v, t)`` (``features``). A transition is used only when the new observation's time is
   the old one's plus ``dt`` (so autoresets and skipped calls never enter the data).
2. **Plan.** The shared CEM (``rlwb.planners.sampling``, never a second CEM) scores action
   sequences on the nominal model plus the GP mean (``residual.ResidualModel``) with a
   non-differentiable objective: tracking cost, input cost and a collision indicator.
3. **Filter.** The CEM's first action passes the CLF/CBF minimal-intervention QP
   (``rlwb.planners.safety``; rows from ``constraints``): a CBF per obstacle, tightened by
   the GP's standard deviation at the current state, and the tracking CLF as a soft
   constraint (squared relaxation weighted by ``safety.clf_weight``, 10 by default; 0 makes
   it a CBF-only filter). An action that already satisfies every row passes unchanged. The
   CLF yields near obstacles: a member whose planned action breaks a CBF row is filtered for
   safety alone (``safety.clf_yields``; without it a CLF of weight 10 pulled the drone back
   towards the reference behind the pillars and cost 51% tracking RMSE on
   Quadrotor-Obstacles-v0, 0.222 against 0.147 m).
4. **Guide the sampling.** The filter's correction (filtered minus planned action) is added
   to the first step of the next plan's sampling mean (``feedback="correct"``; the simplest
   reading of the paper's "guides the sampling" that leaves an untouched plan untouched),
   or the filtered action replaces that first step (``"first"``), or the correction is added
   to the whole shifted mean (``"shift"``), or nothing (``"none"``); only for members the
   filter changed. Measured on Quadrotor-Obstacles-v0 (10 episodes, CBF only): first 0.145 m
   tracking RMSE, none 0.148, shift 0.199, the same clearance for all three; with the CLF,
   which changes the action on a third of the steps by a little, "first" cost the
   figure-eight 34% RMSE (0.027 against 0.020 m, 4 episodes) and "correct" nothing.

Variants (``variant``): ``nominal`` (CEM on the nominal model), ``gp`` (nominal + GP),
``gp_filter`` (the method), ``nominal_filter`` (filter with a zero disturbance estimate).

Decisions the paper leaves open (its full text was not reachable), each a
config field: the input parametrisation (the task's thrust vector, see
``rlwb.envs.quadrotor.task``); the CLF (a sliding-surface Lyapunov function, soft, weight
10, decay rate 0.5/s, yielding to the CBF near obstacles); the GP's target (residual
acceleration, one output per axis, shared kernel) and its online update (sliding window,
``gp.window``); rolling out the GP mean (``rollout_samples=False``); the CBF tightening
(worst case over ``mean +- confidence * std``); the feedback of the filtered action.
Hyperparameters of the GP are fixed, not fitted.

Online learning happens inside ``act`` (training and evaluation alike): this is an adaptive
controller, and the data of one episode's wind say nothing certain about the next one's, so
with ``reset_gp_each_episode`` (default) a member's GP restarts with each episode (detected
by ``t = 0`` in the observation). ``update`` performs no gradient steps; it reports the
filter's intervention rate, its ``safety/infeasible`` and ``safety/fallbacks`` counts
(``rlwb.planners.safety``: no action met every CBF row; the solver failed) and the GP's
size. The agent keeps one context (planner warm starts, GPs, the previous transition) per
batch size, so training and evaluation engines of different sizes never mix. ``explore`` is
ignored: CEM's sampling is the exploration, and the controller acts the same in training and
evaluation.

Defaults: CEM with 200 samples x 4 iterations, 20 elites, horizon 15 (0.75 s, most of a
gust's correlation time); GP window 60 (3 s of data), length scales 2 m/s on velocity and
1 s on time, signal std 1 m/s^2 (the gusts' push), noise 0.05; filter gains (4, 8) and a
5 cm margin (see ``SafetyFilterConfig``). Not tuned beyond the comparisons quoted here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from rlwb import agent_kit as kit
from rlwb import tasks
from rlwb.agent import StepAgent
from rlwb.agents.safe_cem_mpc.constraints import quadrotor_constraints
from rlwb.agents.safe_cem_mpc.residual import ResidualModel, gp_features
from rlwb.engine.base import EngineSpec
from rlwb.envs.quadrotor.task import Quadrotor
from rlwb.errors import ConfigError
from rlwb.planners.gp import GPConfig, SlidingWindowGP
from rlwb.planners.safety import Constraints, MinimalInterventionFilter, SafetyFilterConfig
from rlwb.planners.sampling import SamplingConfig, SamplingPlanner

FORMAT_VERSION = 1
VARIANTS = ("nominal", "gp", "gp_filter", "nominal_filter")


def _planner_defaults() -> SamplingConfig:
    return SamplingConfig(
        method="cem", samples=200, horizon=15, iterations=4, elites=20, momentum=0.1,
        init_std=0.3, min_std=0.05,
    )  # fmt: skip


@dataclass
class SafeCEMMPCConfig:
    """Safe CEM-MPC settings (see the module docstring for what each choice means)."""

    variant: Literal["nominal", "gp", "gp_filter", "nominal_filter"] = "gp_filter"
    """nominal, gp, gp_filter (the method) or nominal_filter."""
    planner: SamplingConfig = field(default_factory=_planner_defaults)
    """The shared CEM's settings (horizon 15 x 0.05 s = 0.75 s)."""
    gp: GPConfig = field(default_factory=GPConfig)
    safety: SafetyFilterConfig = field(default_factory=SafetyFilterConfig)
    features: Literal["velocity", "velocity_time"] = "velocity_time"
    """GP inputs: velocity, or velocity and time."""
    collision_weight: float = 50.0
    """Planning cost per predicted step within collision_margin of an obstacle."""
    collision_margin: float = 0.0
    """Clearance (m) below which the planning objective counts a collision (0: the
    indicator of a predicted collision itself)."""
    rollout_samples: bool = False
    """Roll out GP samples (independent per step) instead of the GP mean."""
    feedback: Literal["none", "first", "correct", "shift"] = "correct"
    """How the filtered action guides the next plan's sampling mean."""
    reset_gp_each_episode: bool = True
    """Forget a member's GP data when its episode restarts."""
    seed: int = 0
    """Seed of the planner's sampling."""
    torch_threads: int = 1
    """torch.set_num_threads at construction on CPU (0: leave it). The planner's tensors are
    small; on a shared 2-core machine two intra-op threads ran this agent 3-5x slower."""

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        if self.feedback not in ("none", "first", "correct", "shift"):
            raise ConfigError(
                f"feedback must be none, first, correct or shift, got {self.feedback!r}"
            )
        if self.features not in ("velocity", "velocity_time"):
            raise ConfigError(f"features must be velocity or velocity_time, got {self.features!r}")
        if self.torch_threads < 0:
            raise ConfigError(f"torch_threads must be >= 0, got {self.torch_threads!r}")
        if self.collision_weight < 0 or self.collision_margin < 0:
            raise ConfigError("collision_weight and collision_margin must be >= 0")

    @property
    def uses_gp(self) -> bool:
        return self.variant in ("gp", "gp_filter")

    @property
    def uses_filter(self) -> bool:
        return self.variant.endswith("_filter")


class _Context:
    """Everything that belongs to one batch of members: warm starts, GPs, last transition."""

    def __init__(self, agent: SafeCEMMPC, batch: int) -> None:
        cfg = agent.config
        self.planner = SamplingPlanner(
            cfg.planner, agent.task.low, agent.task.high, agent.device, seed=cfg.seed + batch
        )
        in_dim = 3 if cfg.features == "velocity" else 4
        self.gp = SlidingWindowGP(cfg.gp, batch, in_dim, 3, agent.device) if cfg.uses_gp else None
        self.prev_obs: torch.Tensor | None = None
        self.prev_action: torch.Tensor | None = None
        self.intervened = torch.zeros(batch, dtype=torch.bool, device=agent.device)
        self.steps = 0
        self.interventions = 0
        self.infeasible = 0
        self.fallbacks = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "planner": self.planner.state_dict(),
            "gp": None if self.gp is None else self.gp.state_dict(),
            "prev_obs": self.prev_obs,
            "prev_action": self.prev_action,
            "intervened": self.intervened,
            "counts": [self.steps, self.interventions, self.infeasible, self.fallbacks],
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.planner.load_state_dict(state["planner"])
        if self.gp is not None:
            self.gp.load_state_dict(state["gp"])
        move = lambda x: None if x is None else x.to(device)  # noqa: E731
        self.prev_obs, self.prev_action = move(state["prev_obs"]), move(state["prev_action"])
        self.intervened = state["intervened"].to(device)
        counts = [int(x) for x in state["counts"]] + [0, 0]  # older checkpoints: two counts
        self.steps, self.interventions, self.infeasible, self.fallbacks = counts[:4]


class SafeCEMMPC(StepAgent):
    """Safe learning-based CEM-MPC on a ``Quadrotor-*`` task (see the module docstring)."""

    def __init__(self, config: SafeCEMMPCConfig, spec: EngineSpec, device: torch.device) -> None:
        self.config, self.spec, self.device = config, spec, torch.device(device)
        config.planner.validate()
        kit.apply_torch_threads(config.torch_threads, self.device)
        try:
            task = tasks.get(spec.task_id).build(**dict(spec.task_kwargs))
        except Exception as exc:  # noqa: BLE001 - any failure means: not our task
            raise ConfigError(f"safe CEM-MPC cannot build task {spec.task_id!r}: {exc}") from None
        if not isinstance(task, Quadrotor):
            raise ConfigError(
                f"safe CEM-MPC plans with the quadrotor's nominal model; {spec.task_id!r} is "
                "not a Quadrotor-* task"
            )
        task.bind(self.device, torch.float32)
        self.task = task
        self.filter = (
            MinimalInterventionFilter(config.safety, task.low, task.high)
            if config.uses_filter
            else None
        )
        self.contexts: dict[int, _Context] = {}
        self.context(spec.num_envs)  # builds the GP and planner now: bad settings fail here

    # ---------------------------------------------------------------- pieces
    def context(self, batch: int) -> _Context:
        if batch not in self.contexts:
            self.contexts[batch] = _Context(self, batch)
        return self.contexts[batch]

    def model(self, ctx: _Context) -> ResidualModel:
        cfg = self.config
        return ResidualModel(
            self.task, ctx.gp, cfg.features, cfg.collision_weight, cfg.collision_margin,
            cfg.rollout_samples, ctx.planner.generator,
        )  # fmt: skip

    def _learn(self, ctx: _Context, obs: torch.Tensor) -> None:
        """Reset members whose episode restarted; add the last transition to the GPs."""
        t = obs[:, 12]
        fresh = t < 0.5 * self.task.dt
        if bool(fresh.any()):
            ctx.planner.reset(fresh)
            if ctx.gp is not None and self.config.reset_gp_each_episode:
                ctx.gp.reset(fresh)
        if ctx.gp is None or ctx.prev_obs is None:
            return
        prev, u = ctx.prev_obs, self.task.clip_action(ctx.prev_action)
        follows = (t - prev[:, 12] - self.task.dt).abs() < 0.25 * self.task.dt
        if bool(follows.any()):
            target = (obs[:, 3:6] - prev[:, 3:6]) / self.task.dt - u
            ctx.gp.add(
                gp_features(prev[:, 3:6], prev[:, 12], self.config.features), target, follows
            )

    def constraints(self, ctx: _Context, obs: torch.Tensor) -> Constraints:
        """CBF rows (GP-tightened) and the tracking CLF row at observation ``obs[B, 13]``."""
        vel, t = obs[:, 3:6], obs[:, 12]
        if ctx.gp is not None:
            mean, var = ctx.gp.predict(gp_features(vel, t, self.config.features)[:, None])
            d_mean, d_std = mean[:, 0], var[:, 0, None].sqrt().expand(-1, 3)
        else:
            d_mean = d_std = torch.zeros_like(vel)
        return quadrotor_constraints(self.task, obs, d_mean, d_std, self.config.safety)

    def _guide(self, ctx: _Context, planned: torch.Tensor, action: torch.Tensor) -> None:
        """Feed the filtered action back into the next plan's sampling mean, for the members
        the filter changed (the others keep their shifted plan as the warm start)."""
        planner, mode = ctx.planner, self.config.feedback
        if mode == "none" or planner.mean is None or not bool(ctx.intervened.any()):
            return
        changed = ctx.intervened[:, None, None]
        delta = planner.to_unit(action) - planner.to_unit(planned)
        if mode == "first":
            first = planner.to_unit(action)[:, None]
            guided = torch.cat([first, planner.mean[:, 1:]], 1)
        elif mode == "correct":
            first = (planner.mean[:, :1] + delta[:, None]).clamp(-1, 1)
            guided = torch.cat([first, planner.mean[:, 1:]], 1)
        else:
            guided = (planner.mean + delta[:, None]).clamp(-1, 1)
        planner.mean = torch.where(changed, guided, planner.mean)

    # ---------------------------------------------------------------- agent API
    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool = False) -> torch.Tensor:
        obs = obs.to(self.device, torch.float32)
        if obs.ndim != 2 or obs.shape[1] != self.task.obs_dim:
            raise ValueError(f"expected quadrotor observations [B, 13], got {tuple(obs.shape)}")
        ctx = self.context(obs.shape[0])
        self._learn(ctx, obs)
        states = torch.cat([obs[:, 12:13], obs[:, 0:6]], 1)  # model state [t, p, v]
        planned = ctx.planner.plan(self.model(ctx), states)
        action = planned
        if self.filter is not None:
            result = self.filter(planned, self.constraints(ctx, obs))
            action, ctx.intervened = result.action, result.intervened
            ctx.interventions += int(result.intervened.sum())
            ctx.infeasible += int(result.infeasible.sum())
            ctx.fallbacks += int(result.fallback.sum())
            self._guide(ctx, planned, action)
        ctx.steps += obs.shape[0]
        ctx.prev_obs, ctx.prev_action = obs, action
        return action

    def observe(self, obs, action, reward, next_obs, terminated, truncated) -> None:  # noqa: ANN001
        """Nothing to store: the GP learns inside :meth:`act` (module docstring)."""

    def update(self, num_updates: int) -> dict[str, float]:
        """Filter statistics of the training members: intervention rate, and the counts of
        member-steps whose CBF rows could not all hold (``safety/infeasible``) and whose QP
        the solver failed on (``safety/fallbacks``, given the least-violating action)."""
        ctx = self.contexts.get(self.spec.num_envs)
        if ctx is None:
            return {}
        out = {
            "filter_intervention_rate": ctx.interventions / max(ctx.steps, 1),
            "safety/infeasible": float(ctx.infeasible),
            "safety/fallbacks": float(ctx.fallbacks),
        }
        if ctx.gp is not None:
            out["gp_points"] = float(ctx.gp.size.float().mean())
        return out

    def episode_start(self, members: torch.Tensor) -> None:
        """Episode starts are detected from the observation's time (works in evaluation too)."""

    def state_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "contexts": {str(b): ctx.state_dict() for b, ctx in self.contexts.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        kit.check_format(state, FORMAT_VERSION, "safe CEM-MPC", oldest=FORMAT_VERSION)
        self.contexts = {}
        for key, value in state["contexts"].items():
            self.context(int(key)).load_state_dict(value, self.device)
