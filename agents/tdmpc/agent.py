"""TD-MPC (Hansen, Wang, Su 2022, "Temporal Difference Learning for Model Predictive Control").

A task-oriented latent dynamics model (TOLD, ``agents.told``) is learned from H-step windows
of replay: the encoder's latent rolled forward by the latent dynamics must match the slow
(EMA) target encoder's latent of the true next observations (consistency), predict the
rewards, and carry twin action values trained by TD learning; each step's loss is weighted
by ``rho ** t`` and the window by its prioritized-replay importance weight. A policy is
trained to maximise ``min(Q1, Q2)`` on the detached latents. Acting plans in latent space
with the shared MPPI of ``rlwb.planners.sampling``: the latent model of this file scores
action sequences by their discounted predicted rewards plus ``gamma ** H`` times the
terminal value ``min Q(z_H, pi(z_H))``, and ``int(mixture * samples)`` policy rollouts join
the Gaussian samples of every iteration. No planning loop lives in this agent.

Defaults are the authors' (``cfgs/default.yaml`` of github.com/nicklashansen/tdmpc, checked
against the paper's appendix): see :class:`TDMPCConfig`; ``TDMPCConfig.small()`` is a
scaled-down setting for CPU tests. Action repeat (4 by default; 2 walker/finger, 8
cartpole) belongs to the engine, so every "step" here (seed steps, schedules) is an agent
step, as in the authors' code; published curves count simulator steps (agent steps x
action repeat).

From pixels: given an image observation space ``(C, H, W)`` (uint8 frames stacked along the
channels, an engine made with ``observation="pixels"``), TD-MPC builds the authors' pixel
encoder with no other flag (``src/algorithm/helper.py`` and ``cfgs/pixels.yaml`` of
github.com/nicklashansen/tdmpc): pixels / 255, four Conv2d of ``num_channels`` = 32
filters, kernels 7, 5, 3, 3, all stride 2, no padding, ReLU after each, flattened, one
Linear to ``latent_dim`` = 50 (84 x 84: 32 x 3 x 3 = 288 features); convs orthogonally
initialised with the ReLU gain. Updates shift every image of a window (first observation
and each next observation, independently) by the random-shift augmentation of DrQ
(``rlwb.nn.RandomShift``, border-replicating pad ``int(H / 21)`` = 4 at 84 x 84); the
consistency and TD targets read the same shifted next observations, as the authors' code
does, and acting sees the frames unshifted.
Their pixel setting also has frame_stack 3, image size 84, 8 planning iterations and a
100k env-step budget: engine options and ``experiments/tdmpc_dmc.py``. The replay keeps
each frame once (``rlwb.replay.StackedFrames``), uint8. Where the authors' pixel code
differs from this: their buffer lives on the CPU and stores the final observation of
fixed-length episodes apart; ours stores per-member trajectories of any length.

Where we differ from the authors' code, on purpose:

* Several engine members at once: the replay keeps one trajectory per member and the
  schedules count transitions summed over members (one member reproduces the original).
* Terminations: the TD target is ``r + gamma * (1 - terminated) * min Q'(z', pi(z'))``
  (DMControl never terminates, so the original has no mask; Gymnasium MuJoCo tasks do). A
  time-limit truncation is bootstrapped through, and windows never cross an episode end.
* Uniform random actions for the first seed steps are the runner's ``learning_starts``;
  with ``seed_updates`` the first ``update`` call also runs one update per transition
  stored so far, as the authors' loop does when its seed steps end.
* MPPI temperature: the authors weight elites by ``exp(temperature * (value - max))``;
  the shared planner uses ``softmax((value - max) / temperature)``, so it gets
  ``1 / temperature``. Momentum smooths the mean only (the std is refit each iteration),
  the executed action is drawn from the final elites by their weights, and exploration
  adds the final std of the first step times Gaussian noise, all as in the original.
* Evaluation: the runner evaluates a separate agent loaded with ``policy_state_dict()``
  (model and step count) and calls ``episode_start``, so evaluation plans from a fresh
  warm start and never touches the training members' warm starts.
* A model's NaN value ranks a candidate last (the original replaces NaN by 0).

Speed: every tensor stays on the agent's device (CPU or CUDA; nothing is CUDA-specific), all
engine members plan in one batched call (in inference mode), an update samples its windows
in one draw over the stored rows (not the buffer's capacity), draws its noise up front, rolls
the latents forward one step at a time and then evaluates reward, twin Q and consistency on
all H steps in one pass each; Adam runs its fused kernel (``rlwb.nn.FusedAdamStep``) and
the replay's maximum priority stays on the device (no host sync per update). With
``compile=True`` the two loss functions and the planner's latent rollout go through
torch.compile: on CUDA in mode "reduce-overhead" (CUDA graphs; prioritized sampling, the
noise draws, the optimizer steps and the EMA stay eager outside the graphs, so what is
captured reads only its inputs and the parameters), on CPU inductor's kernels. On the
authors' configuration the update and the plan are compute-bound (about 35 and 25 GFLOP);
one CPU core does about 0.25 s per plan and 0.35 s per update (the update ~10% less than
before these changes, the plan the same), and compile took another 10-14% off the pair at
about a minute of compile time (``benchmarks/RESULTS.md``): an option, off by default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from rlwb import agent_kit as kit
from rlwb.agent import NUM_UPDATES, PolicyNetwork, ScaledPolicy, StepAgent
from rlwb.agents.tdmpc.told import TOLD, TargetTOLD, TOLDWorld, noisy_action, state_encoder
from rlwb.engine.base import EngineSpec
from rlwb.errors import ConfigError
from rlwb.nn import (
    ConvSpec,
    FusedAdamStep,
    RandomShift,
    encoder_for,
    fused_adam_available,
    is_image,
    soft_update_,
)
from rlwb.planners.latent import LatentModel
from rlwb.planners.sampling import SamplingConfig, SamplingPlanner
from rlwb.replay import StackedFrames, TrajectoryBuffer

FORMAT_VERSION = 1


@dataclass
class TDMPCConfig:
    """TD-MPC hyperparameters; defaults are the authors' state-based DMControl setting."""

    # ---- planning
    planner: Literal["mppi", "cem"] = "mppi"
    """Sampling method of the shared planner (TD-MPC: MPPI; CEM for comparison)."""
    iterations: int = 6
    """Refits of the sampling distribution per control step."""
    samples: int = 512
    """Gaussian candidate sequences per member and iteration."""
    elites: int = 64
    """Best candidates the distribution is refit to (weighted by their values)."""
    mixture: float = 0.05
    """Fraction of extra policy-prior trajectories: int(mixture * samples) = 25."""
    temperature: float = 0.5
    """Elite weights exp(temperature * (value - max)), the authors' convention."""
    momentum: float = 0.1
    """new mean = momentum * old + (1 - momentum) * weighted elite mean."""
    init_std: float = 2.0
    """Sampling std at the start of every control step (mean 0 or the warm start)."""
    min_std: float = 0.05
    """Floor of the sampling std at the end of the std schedule; the std of the policy's
    noise in planning, TD targets and the policy loss."""
    std_start: float = 0.5
    """Std schedule: the floor decays linearly from std_start to min_std."""
    horizon_start: int = 1
    """Horizon schedule: the planning horizon grows linearly from horizon_start to horizon."""
    schedule_steps: int = 25_000
    """Length of both schedules, in agent steps."""
    # ---- learning
    horizon: int = 5
    """Planning horizon and length of the training windows."""
    batch_size: int = 512
    """Windows per update."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions (split evenly over the engine members)."""
    lr: float = 1e-3
    """Adam learning rate of the model and of the policy."""
    gamma: float = 0.99
    """Discount of the TD targets and of the planned returns."""
    rho: float = 0.5
    """Temporal weight rho ** t of the window's step t in every loss."""
    consistency_coef: float = 2.0
    """Weight of the latent consistency loss (MSE to the target encoder's latents)."""
    reward_coef: float = 0.5
    """Weight of the reward MSE."""
    value_coef: float = 0.1
    """Weight of the TD value MSE (both Q heads)."""
    grad_clip: float = 10.0
    """Gradient norm clip of the model and of the policy."""
    tau: float = 0.01
    """EMA rate of the target encoder and Q heads."""
    target_every: int = 2
    """EMA target update every this many updates (the authors' update_freq)."""
    per_alpha: float = 0.6
    """Prioritized replay exponent (window priority = its rho-weighted |TD error|)."""
    per_beta: float = 0.4
    """Importance-weight exponent of prioritized replay."""
    seed_updates: bool = True
    """The first update call also runs one update per stored transition (the authors'
    catch-up when the seed steps end)."""
    # ---- architecture
    latent_dim: int = 50
    """Latent size (the authors use 100 for humanoid and dog)."""
    mlp_dim: int = 512
    """Hidden width of dynamics, reward, Q and policy."""
    enc_dim: int = 256
    """Hidden width of the encoder of state observations."""
    num_channels: int = 32
    """Channels of each of the four conv layers of the encoder of image observations."""
    shift_pad: int = -1
    """Random shift of image observations in updates, at most this many pixels (-1: the
    authors' ``int(image side / 21)``, 4 at 84 x 84; 0: no augmentation)."""
    # ---- runtime
    compile: bool = False
    """torch.compile the update's two loss functions and the planner's latent rollout (on
    CUDA with CUDA graphs, mode "reduce-overhead"; on CPU inductor's fused kernels). Costs
    compile time at the start and when the horizon schedule changes the plan's shape."""
    torch_threads: int = 1
    """torch.set_num_threads on CPU at construction (0: leave torch's setting)."""
    seed: int | None = None
    """Seed of the agent's generators; None: drawn from torch's global generator."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad field."""

        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"TDMPCConfig.{name} {why}, got {getattr(self, name)!r}")

        if self.planner not in ("mppi", "cem"):
            raise bad("planner", "must be 'mppi' or 'cem'")
        integers = (
            "iterations", "samples", "elites", "horizon", "batch_size", "buffer_size",
            "latent_dim", "mlp_dim", "enc_dim", "target_every", "horizon_start", "num_channels",
        )  # fmt: skip
        for name in integers:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(name, "must be an integer >= 1")
        if self.elites > self.samples:
            raise bad("elites", f"must be <= samples ({self.samples})")
        if self.horizon_start > self.horizon:
            raise bad("horizon_start", f"must be <= horizon ({self.horizon})")
        checks = (
            ("mixture", 0 <= self.mixture <= 1, "in [0, 1]"),
            ("temperature", self.temperature > 0, "> 0"),
            ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
            ("init_std", self.init_std > 0, "> 0"),
            ("min_std", 0 <= self.min_std <= self.init_std, "in [0, init_std]"),
            ("std_start", self.min_std <= self.std_start <= self.init_std,
             "in [min_std, init_std]"),
            ("schedule_steps", self.schedule_steps >= 0, ">= 0"),
            ("lr", self.lr > 0, "> 0"),
            ("gamma", 0 <= self.gamma <= 1, "in [0, 1]"),
            ("rho", 0 < self.rho <= 1, "in (0, 1]"),
            ("grad_clip", self.grad_clip > 0, "> 0"),
            ("tau", 0 < self.tau <= 1, "in (0, 1]"),
            ("per_alpha", self.per_alpha >= 0, ">= 0"),
            ("per_beta", self.per_beta >= 0, ">= 0"),
            ("torch_threads", self.torch_threads >= 0, ">= 0"),
            ("shift_pad", self.shift_pad >= -1, ">= -1"),
        )  # fmt: skip
        for name, ok, rule in checks:
            if not ok:
                raise bad(name, f"must be {rule}")
        for name in ("consistency_coef", "reward_coef", "value_coef"):
            if not getattr(self, name) >= 0:
                raise bad(name, "must be >= 0")

    @classmethod
    def official(cls, **overrides: Any) -> TDMPCConfig:
        """The authors' defaults (the plain constructor), with ``overrides``."""
        return cls(**overrides)

    @classmethod
    def small(cls, **overrides: Any) -> TDMPCConfig:
        """A CPU-sized setting for small tasks and tests: narrow networks, fewer samples,
        short schedules. Same algorithm."""
        values: dict[str, Any] = dict(
            iterations=4,
            samples=128,
            elites=16,
            mixture=0.1,
            batch_size=128,
            buffer_size=100_000,
            schedule_steps=2_000,
            latent_dim=24,
            mlp_dim=128,
            enc_dim=64,
        )
        return cls(**{**values, **overrides})


def linear_schedule(start: float, end: float, duration: int, step: int) -> float:
    """``start`` -> ``end`` linearly over ``duration`` steps, then ``end``."""
    if duration <= 0:
        return end
    mix = min(max(step / duration, 0.0), 1.0)
    return (1.0 - mix) * start + mix * end


class TDMPC(StepAgent):
    """TD-MPC over a batched engine (see the module docstring)."""

    def __init__(self, config: TDMPCConfig, spec: EngineSpec, device: torch.device | str) -> None:
        if not isinstance(config, TDMPCConfig):
            raise ConfigError(f"TDMPC needs a TDMPCConfig, got {type(config).__name__}")
        config.validate()
        self.config, self.spec = config, spec
        self.device = dev = torch.device(device)
        self.action_scale, self.action_bias = kit.unit_action_map(spec, dev, "TDMPC", images=True)
        kit.apply_torch_threads(config.torch_threads, dev)
        shape, act_dim = spec.observation_shape, spec.action_dim
        self.images = is_image(shape)
        pad = config.shift_pad if config.shift_pad >= 0 else int(shape[-1] / 21)
        self.shift = RandomShift(pad if self.images else 0)

        self.generator = kit.seeded_generator(config.seed, dev)
        seed = self.generator.initial_seed()
        with torch.random.fork_rng(devices=[]):  # initialisation from the seed alone
            torch.manual_seed(seed)
            encoder, _ = encoder_for(
                shape,
                ConvSpec((config.num_channels,) * 4, (7, 5, 3, 3), (2, 2, 2, 2), config.latent_dim),
                lambda obs_dim: state_encoder(obs_dim, config.enc_dim, config.latent_dim),
            )
            # the encoder is given, so TOLD's own state-encoder sizes (obs_dim, enc_dim) go unused
            self.model = TOLD(0, act_dim, config.latent_dim, 0, config.mlp_dim, encoder)
        self.model.to(dev)
        self.target = TargetTOLD(self.model).to(dev)
        self._targets, self._sources = self.target.sources(self.model)
        self._pi_params = list(self.model.pi.parameters())
        pi_ids = {id(p) for p in self._pi_params}
        self._model_params = [p for p in self.model.parameters() if id(p) not in pi_ids]
        opt_kw: dict[str, Any] = {"fused": True} if fused_adam_available(dev) else {}
        self.optim = torch.optim.Adam(self._model_params, lr=config.lr, **opt_kw)
        self.pi_optim = torch.optim.Adam(self._pi_params, lr=config.lr, **opt_kw)
        self._model_step, self._pi_step = FusedAdamStep(self.optim), FusedAdamStep(self.pi_optim)

        self._replay: TrajectoryBuffer | None = None  # built on first use (not for evaluation)
        self.steps = 0  # transitions observed (agent steps, summed over members)
        self.updates = 0
        self._owed: dict[str, Any] | None = None  # an interrupted update call's rest
        self.world = TOLDWorld(self.model, config.gamma, self.generator)
        self.latent_model = LatentModel(self.world)
        self.prior_count = int(config.mixture * config.samples)
        unit = torch.ones(act_dim, device=dev)
        self.planner = SamplingPlanner(self._planner_config(), -unit, unit, dev, seed=seed + 1)
        self._compiled = config.compile
        self._model_loss, self._policy_loss = self._model_loss_eager, self._policy_loss_eager
        if config.compile:  # CUDA: CUDA graphs; CPU: inductor's fused C++ kernels
            mode = "reduce-overhead" if dev.type == "cuda" else None
            self._model_loss = torch.compile(self._model_loss_eager, mode=mode)
            self._policy_loss = torch.compile(self._policy_loss_eager, mode=mode)
            self._latent_rollout = torch.compile(self.latent_model.rollout, mode=mode)
            self.latent_model.rollout = self._rollout_with_noise

    @property
    def replay(self) -> TrajectoryBuffer:
        """Per-member trajectories, allocated on first use: an evaluation copy never does."""
        if self._replay is None:
            shape, act_dim = self.spec.observation_shape, self.spec.action_dim
            obs = (shape, torch.uint8 if self.images else torch.float32)
            fields = {
                "obs": obs,
                "action": ((act_dim,), torch.float32),
                "reward": ((), torch.float32),
                "next_obs": obs,
                "terminated": ((), torch.float32),
            }
            capacity = max(self.config.buffer_size, self.spec.num_envs)
            frames = None
            if self.images:  # each frame once, stacks rebuilt when sampling
                frames = StackedFrames.for_shape(shape, self.spec.task_kwargs.get("frame_stack"))
            self._replay = TrajectoryBuffer(
                capacity, self.spec.num_envs, fields, self.device, self.generator, frames
            )
        return self._replay

    def _planner_config(self) -> SamplingConfig:
        cfg = self.config
        return SamplingConfig(
            method=cfg.planner,
            samples=cfg.samples,
            horizon=self.plan_horizon(),
            iterations=cfg.iterations,
            elites=cfg.elites,
            temperature=1.0 / cfg.temperature,
            momentum=cfg.momentum,
            init_std=cfg.init_std,
            min_std=self.std_floor(),
            prior_samples=self.prior_count,
            momentum_std=False,
            execute="sample",
        )

    def _rollout_with_noise(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The planner's ``model.rollout`` with ``compile``: the terminal value's policy noise
        drawn first (the same numbers the eager rollout draws), then the compiled rollout."""
        if self.world.noise_std <= 0:  # a noiseless policy: nothing to draw
            return self._latent_rollout(states, actions)
        b, n = actions.shape[:2]
        shape = (b * n, self.spec.action_dim)
        noise = torch.randn(shape, generator=self.generator, device=self.device)
        return self._latent_rollout(states, actions, noise=noise)

    # ------------------------------------------------------------------ schedules
    def std_floor(self) -> float:
        cfg = self.config
        return linear_schedule(cfg.std_start, cfg.min_std, cfg.schedule_steps, self.steps)

    def plan_horizon(self) -> int:
        cfg = self.config
        h = linear_schedule(cfg.horizon_start, cfg.horizon, cfg.schedule_steps, self.steps)
        return int(min(cfg.horizon, h))

    # ------------------------------------------------------------------ acting
    @torch.inference_mode()
    def act(self, obs: torch.Tensor, explore: bool = False) -> torch.Tensor:
        """Plan in latent space with MPPI; with ``explore``, add the plan's std as noise.
        Inference mode: planning records nothing for autograd (warm starts kept between
        calls are only ever replaced, never changed in place)."""
        obs = obs.to(self.device, torch.uint8 if self.images else torch.float32)
        planner, horizon = self.planner, self.plan_horizon()
        if planner.config.horizon != horizon:  # the horizon schedule moved on
            planner.config.horizon = horizon
            planner.reset()
        planner.config.min_std = self.std_floor()
        self.world.noise_std = self.config.min_std
        z = self.world.encode(obs)
        prior = None
        if self.prior_count > 0:
            prior = self.latent_model.policy_prior(z, self.world.policy, self.prior_count, horizon)
        u = planner.plan(self.latent_model, z, prior)
        if explore:
            noise = torch.randn(u.shape, generator=self.generator, device=self.device)
            u = (u + planner.last_std * noise).clamp(-1.0, 1.0)
        return u * self.action_scale + self.action_bias

    def policy_network(self) -> PolicyNetwork:
        """Encoder and policy prior without noise, ``tanh(pi(h(obs)))`` scaled to the bounds:
        the network part of acting (``act`` plans around it)."""
        m = self.model
        prior = nn.Sequential(m.encoder, m.pi, nn.Tanh())
        return PolicyNetwork(
            ScaledPolicy(prior, self.action_scale, self.action_bias),
            differs_from_act="TD-MPC acts by MPPI planning in latent space; this is its encoder "
            "and learned policy prior (the planner's prior samples), deterministic, without "
            "the planner",
        )

    def episode_start(self, members: torch.Tensor) -> None:
        """Forget the warm start of members that begin an episode."""
        self.planner.reset(members.to(self.device, torch.bool))

    # ------------------------------------------------------------------ learning
    def observe(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        reward: torch.Tensor,
        next_obs: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
    ) -> None:
        """Append one step of every member to its trajectory (actions stored in [-1, 1])."""
        dev = self.device
        terminated, truncated = terminated.to(dev), truncated.to(dev)
        self.replay.add(
            done=terminated | truncated,
            obs=obs.to(dev),
            action=kit.to_unit(action, self.action_scale, self.action_bias),
            reward=reward.to(dev),
            next_obs=next_obs.to(dev),
            terminated=terminated,
        )
        self.steps += int(obs.shape[0])

    def update(self, num_updates: int = 1) -> dict[str, Any]:
        """``num_updates`` TOLD + policy updates on prioritized windows (more on the first
        call with ``seed_updates``); mean losses as 0-dim tensors and, under ``num_updates``,
        how many ran (the runner counts it).

        Each update is a unit of the phase ``"updates"``: the catch-up shows progress, and
        a stop request leaves the rest owed (kept by ``state_dict``). The next call,
        ``update(0)`` included, runs the owed updates first and reports them with its own,
        so a run resumed mid-catch-up ends as one never stopped."""
        work = self._owed
        if work is None:
            if num_updates < 1:
                return {}
            if self.updates == 0 and self.config.seed_updates:
                num_updates += len(self.replay)
            work = self._owed = {"left": num_updates, "ran": 0, "sums": {}}
        else:
            work["left"] += max(num_updates, 0)
        total, sums = work["ran"] + work["left"], work["sums"]
        while work["left"] > 0:
            self.phase("updates", work["ran"], total)
            for key, value in self._update_once().items():
                sums[key] = sums.get(key, 0.0) + value
            work["ran"] += 1
            work["left"] -= 1
        self._owed = None
        ran = work["ran"]
        return {NUM_UPDATES: ran, **{k: v / ran for k, v in sums.items()}}

    def _update_once(self) -> dict[str, torch.Tensor]:
        cfg, h, gen = self.config, self.config.horizon, self.generator
        batch = self.replay.sample_windows(
            cfg.batch_size, h, cfg.per_alpha, cfg.per_beta, first_only=("obs",)
        )
        if self.images:  # a new random shift for every image (the authors' augmentation)
            batch["obs"] = self.shift(batch["obs"], gen)
            batch["next_obs"] = self.shift(batch["next_obs"], gen)
        b, a = cfg.batch_size, self.spec.action_dim
        # all random numbers drawn here, outside the (possibly compiled) loss functions
        td_noise = torch.randn((b, h, a), generator=gen, device=self.device)
        pi_noise = torch.randn((h + 1, b, a), generator=gen, device=self.device)
        if self._compiled and self.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()
        loss, stats, priority, latents = self._model_loss(batch, td_noise)
        self._model_step.zero_grad()
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self._model_params, cfg.grad_clip)
        self._model_step.step()
        self.replay.update_priorities(batch["member"], batch["step"], priority)

        pi_loss = self._policy_loss(latents, pi_noise)
        self._pi_step.zero_grad()
        pi_loss.backward(inputs=self._pi_params)
        torch.nn.utils.clip_grad_norm_(self._pi_params, cfg.grad_clip)
        self._pi_step.step()
        self.updates += 1
        if self.updates % cfg.target_every == 0:
            soft_update_(self._targets, self._sources, cfg.tau)
        return {**stats, "pi_loss": pi_loss.detach(), "grad_norm": grad_norm.detach()}

    def _model_loss_eager(
        self, batch: dict[str, torch.Tensor], td_noise: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """TOLD's loss on a batch of windows ``[B, H, ...]`` (``sample_windows``; ``obs`` only
        the first step's, ``[B, ...]``): (the loss
        to back-propagate, detached statistics, new window priorities ``[B]``, the detached
        latents ``[H+1, B, L]``).

        The latents are rolled forward one step at a time (each needs the last); reward, Q
        and consistency terms then run on all H steps at once (one large matmul per layer
        instead of H small ones)."""
        cfg, m, h = self.config, self.model, self.config.horizon
        obs, action, reward = batch["obs"], batch["action"], batch["reward"]
        next_obs, terminated = batch["next_obs"], batch["terminated"]
        with torch.no_grad():
            next_z = m.encode(next_obs)  # [B, H, L]
            next_a = noisy_action(torch.tanh(m.pi(next_z)), cfg.min_std, td_noise)
            td_target = reward + cfg.gamma * (1 - terminated) * self.target.min_q(next_z, next_a)
            consistency_target = self.target.encode(next_obs)
        zs = [m.encode(obs)]
        for t in range(h):
            zs.append(m.next(zs[-1], action[:, t]))
        z = torch.stack(zs, 1)  # [B, H+1, L]
        q1, q2 = m.q(z[:, :-1], action)  # [B, H]
        reward_pred = m.reward(z[:, :-1], action)
        rho = cfg.rho ** torch.arange(h, device=z.device, dtype=z.dtype)  # [H]
        consistency = (z[:, 1:] - consistency_target).pow(2).mean(-1) @ rho
        reward_loss = (reward_pred - reward).pow(2) @ rho
        e1, e2 = q1 - td_target, q2 - td_target
        value_loss = (e1.pow(2) + e2.pow(2)) @ rho
        priority = ((e1.abs() + e2.abs()).detach() @ rho).clamp(max=1e4)
        total = (
            cfg.consistency_coef * consistency.clamp(max=1e4)
            + cfg.reward_coef * reward_loss.clamp(max=1e4)
            + cfg.value_coef * value_loss.clamp(max=1e4)
        )
        weighted = (total * batch["weight"]).mean()
        stats = {
            "consistency_loss": consistency.mean().detach(),
            "reward_loss": reward_loss.mean().detach(),
            "value_loss": value_loss.mean().detach(),
            "total_loss": total.mean().detach(),
            "weighted_loss": weighted.detach(),
        }
        # the authors scale the gradient by 1 / horizon
        return weighted / h, stats, priority, z.detach().transpose(0, 1)

    def _policy_loss_eager(self, latents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``-sum_t rho^t mean_B min Q(z_t, pi(z_t))`` over detached latents ``[H+1, B, L]``
        (backward into the policy's parameters only)."""
        cfg, m = self.config, self.model
        a = noisy_action(torch.tanh(m.pi(latents)), cfg.min_std, noise)
        q = m.min_q(latents, a).mean(1)  # [H+1]
        weights = cfg.rho ** torch.arange(len(q), device=q.device, dtype=q.dtype)
        return -(weights * q).sum()

    # ------------------------------------------------------------------ checkpoints
    def policy_state_dict(self) -> dict[str, Any]:
        """What acting needs: the model and the schedule's step (the plan horizon and the
        std floor depend on it). Warm starts are per episode and start empty."""
        return {"format_version": FORMAT_VERSION, "model": self.model.state_dict(),
                "steps": self.steps}  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        return {
            **self.policy_state_dict(),
            "config": dataclasses.asdict(self.config),
            **kit.states_of(self, ("target", "optim", "pi_optim", "replay", "planner")),
            "planner_horizon": self.planner.config.horizon,
            "generator": self.generator.get_state(),
            "updates": self.updates,
            "owed": self._owed and {**self._owed, "sums": dict(self._owed["sums"])},
        }

    def load_policy_state_dict(self, state: dict[str, Any]) -> None:
        kit.check_format(state, FORMAT_VERSION, "TDMPC")
        with kit.checkpoint_fits("TDMPC"):
            self.model.load_state_dict(state["model"])
            self.steps = int(state["steps"])
        self.planner.reset()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_policy_state_dict(state)
        with kit.checkpoint_fits("TDMPC"):
            kit.load_states(self, state, ("target", "optim", "pi_optim"))
            self._model_step.bind()
            self._pi_step.bind()
            self.planner.config.horizon = int(state["planner_horizon"])
            self.planner.load_state_dict(state["planner"])
            self.generator.set_state(state["generator"])
            self.updates = int(state["updates"])
            owed = state.get("owed")  # absent from checkpoints of earlier versions
            self._owed = owed and {
                "left": int(owed["left"]),
                "ran": int(owed["ran"]),
                "sums": {k: v.to(self.device) for k, v in owed["sums"].items()},
            }
        self.replay.load_state_dict(state["replay"])
