"""PETS' probabilistic ensemble (Chua et al. 2018) and its trajectory-sampling model.

:class:`ProbabilisticEnsemble`: E Gaussian MLPs ``(obs, action) -> N(mean, var)`` of the
observation change (plus the reward when a learned reward head is needed), held as stacked
weights ``[E, in, out]`` so all members run in one batched matmul. Inputs are normalised
with the training data's statistics; log-variances are soft-clamped between learned bounds
(PETS' ``max_logvar``/``min_logvar`` with their 0.01 penalty). Each member trains on its own
bootstrap draw (indices sampled with replacement per member and batch). Observation
processing (``angle_dims``, ``hidden_dims``, ``absolute_dims``) is PETS' per-task
pre/post-processing: angles as sine/cosine, entries left out of the inputs, entries
predicted as values rather than changes. ``planned`` holds the members planned with (the
``elites`` best on held-out data, as mbrl-lib; all when ``elites`` is 0).

:class:`EnsembleModel`: the planner's model. Trajectory sampling TS-inf: every candidate
sequence is propagated as ``particles`` particles, each bound to one ensemble member for
the whole horizon, sampling the next observation from that member's Gaussian; the return
of a candidate is the mean over its particles. Rewards come from the task's known function
of observations (the task's ``reward_from_obs``) or from the learned head's mean.

Deviations: particles are split evenly across the planned members (``particles`` a
multiple of them) instead of PETS' uniform random assignment, so each member runs one
contiguous batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from rlwb.errors import ConfigError
from rlwb.planners.models import RewardFn, check_plan_shapes


@dataclass
class EnsembleConfig:
    """Ensemble size, network and optimiser (defaults: PETS/mbrl-lib, smaller width)."""

    members: int = 5
    hidden: int = 200
    layers: int = 3
    """Hidden layers."""
    lr: float = 1e-3
    weight_decay: float = 5e-5
    batch_size: int = 256
    elites: int = 0
    """Members planned with: the ``elites`` best on held-out transitions after each
    training round (mbrl-lib: 5 of 7); 0: all members."""
    particles: int = 20
    """Particles per candidate sequence in planning (a multiple of the members planned
    with: ``elites``, or ``members``)."""
    angle_dims: tuple[int, ...] = ()
    """Observation entries that are angles: the networks see their sine and cosine
    instead (PETS' observation pre-processing for HalfCheetah's root angle)."""
    hidden_dims: tuple[int, ...] = ()
    """Observation entries the networks do not see (their change is still predicted):
    ones the dynamics do not depend on, such as a cart's position on a free track, which
    the networks would otherwise extrapolate in from the few places the data covers."""
    absolute_dims: tuple[int, ...] = ()
    """Observation entries predicted as their next value instead of their change (PETS /
    mbrl-lib predict HalfCheetah's x velocity so: it does not accumulate)."""
    normalize_targets: bool = False
    """Standardise the targets (observation change, reward) with the training data's
    statistics, as the inputs are (a deviation; PETS and mbrl-lib normalise inputs only).
    On HalfCheetah the joint-velocity changes (std ~10) otherwise swamp the position
    changes (std ~0.03-0.3) until the learned variance bounds catch up: held-out one-step
    MSE 0.23 vs 1.27 after 1000 Adam steps, 0.19 vs 0.35 after 3000. On InvertedPendulum
    it was worse (1.0e-3 vs 2.0e-4 after 300 steps), hence off by default and on in
    ``pets_mujoco``'s HalfCheetah preset (benchmarks/RESULTS.md)."""

    @property
    def planned(self) -> int:
        """How many members the planner propagates particles through."""
        return self.elites or self.members

    def validate(self) -> None:
        for name in ("members", "hidden", "layers", "batch_size", "particles"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ensemble {name} must be an integer >= 1, got {value!r}")
        if not 0 <= self.elites <= self.members:
            raise ConfigError(
                f"ensemble elites must lie in [0, members={self.members}], got {self.elites!r}"
            )
        if self.particles % self.planned:
            raise ConfigError(
                f"ensemble particles ({self.particles}) must be a multiple of the members "
                f"planned with ({self.planned})"
            )
        for name in ("angle_dims", "hidden_dims", "absolute_dims"):
            dims = tuple(getattr(self, name))
            if len(set(dims)) != len(dims) or any(d < 0 for d in dims):
                raise ConfigError(f"ensemble {name} must be distinct indices >= 0, got {dims}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError("ensemble lr must be > 0 and weight_decay >= 0")


class ProbabilisticEnsemble(nn.Module):
    """E Gaussian MLPs with stacked weights; predicts ``[delta obs, (reward)]``."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        config: EnsembleConfig,
        learn_reward: bool,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__()
        config.validate()
        self.config, self.obs_dim, self.action_dim = config, obs_dim, action_dim
        self.learn_reward = bool(learn_reward)
        self.out_dim = obs_dim + int(self.learn_reward)
        e, dev = config.members, torch.device(device)
        for name in ("angle_dims", "hidden_dims", "absolute_dims"):
            dims = getattr(config, name)
            if any(d >= obs_dim for d in dims):
                raise ConfigError(f"ensemble {name} {dims} beyond the {obs_dim} observations")
        unseen = (*config.angle_dims, *config.hidden_dims)
        keep = [d for d in range(obs_dim) if d not in unseen]
        absolute = torch.zeros(obs_dim, dtype=torch.bool)
        absolute[list(config.absolute_dims)] = True
        in_dim = len(keep) + 2 * len(config.angle_dims) + action_dim
        sizes = [in_dim] + [config.hidden] * config.layers + [2 * self.out_dim]
        g = torch.Generator().manual_seed(seed)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            std = 1 / (2 * math.sqrt(fan_in))  # PETS' truncated-normal scale, untruncated
            self.weights.append(nn.Parameter(torch.randn(e, fan_in, fan_out, generator=g) * std))
            self.biases.append(nn.Parameter(torch.zeros(e, 1, fan_out)))
        self.max_logvar = nn.Parameter(torch.full((self.out_dim,), 0.5))
        self.min_logvar = nn.Parameter(torch.full((self.out_dim,), -10.0))
        self.register_buffer("in_mean", torch.zeros(sizes[0]))
        self.register_buffer("in_std", torch.ones(sizes[0]))
        self.register_buffer("out_mean", torch.zeros(self.out_dim))
        self.register_buffer("out_std", torch.ones(self.out_dim))
        self.register_buffer("planned", torch.arange(config.planned))
        self.register_buffer("keep", torch.tensor(keep, dtype=torch.long), persistent=False)
        self.register_buffer("angles", torch.tensor(config.angle_dims, dtype=torch.long),
                             persistent=False)  # fmt: skip
        self.register_buffer("absolute", absolute, persistent=False)
        contiguous = bool(keep) and keep == list(range(keep[0], keep[-1] + 1))
        self._kept_slice = slice(keep[0], keep[-1] + 1) if contiguous else None
        self.to(dev)
        self._optimizer: torch.optim.Adam | None = None

    @property
    def optimizer(self) -> torch.optim.Adam:
        """Built on first use: planning alone never imports torch.optim's compile machinery."""
        if self._optimizer is None:
            self._optimizer = torch.optim.Adam(  # foreach: fewer ops per step, same values
                self.parameters(),
                lr=self.config.lr,
                weight_decay=self.config.weight_decay,
                foreach=True,
            )
        return self._optimizer

    def forward(
        self, obs: torch.Tensor, action: torch.Tensor, members: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs[E, M, O], action[E, M, A]`` -> mean, logvar ``[E, M, out]`` in target units
        (E: all members, or the ``members`` indices given)."""
        mean, logvar = self.normalised(obs, action, members)
        return self.out_mean + mean * self.out_std, logvar + 2 * self.out_std.log()

    def normalised(
        self, obs: torch.Tensor, action: torch.Tensor, members: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the standardised targets (what the networks predict)."""
        layers = list(zip(self.weights, self.biases, strict=True))
        if members is not None:
            layers = [(w[members], b[members]) for w, b in layers]
        return self.network(self.standardise(obs, action), layers)

    def standardise(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The networks' inputs, standardised with the training data's statistics."""
        return (self.inputs(obs, action) - self.in_mean) / self.in_std

    def network(
        self, x: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The stacked MLPs on standardised inputs ``x`` with the given ``(weight, bias)``
        per layer: standardised mean and soft-bounded log-variance."""
        inplace = not torch.is_grad_enabled()  # training needs the pre-activations
        for w, b in layers[:-1]:
            x = F.silu(torch.baddbmm(b, x, w), inplace=inplace)
        w, b = layers[-1]
        mean, logvar = torch.baddbmm(b, x, w).split(self.out_dim, dim=-1)
        logvar = self.max_logvar - F.softplus(self.max_logvar - logvar)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return mean, logvar

    @torch.no_grad()
    def planning_layers(self, members: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(weight, bias)`` per layer of ``members``, gathered once for a whole rollout
        (no copy when they are all members in order)."""
        layers = list(zip(self.weights, self.biases, strict=True))
        if len(members) == self.config.members and bool(
            (members == torch.arange(len(members), device=members.device)).all()
        ):
            return layers
        return [(w[members], b[members]) for w, b in layers]

    def inputs(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Network inputs before normalisation: observation (angles as sine and cosine)
        and action."""
        if len(self.keep) == self.obs_dim:
            return torch.cat([obs, action], -1)
        if self._kept_slice is not None and not self.config.angle_dims:
            return torch.cat([obs[..., self._kept_slice], action], -1)  # a view, no gather
        angle = obs[..., self.angles]
        return torch.cat([obs[..., self.keep], angle.sin(), angle.cos(), action], -1)

    def next_obs(self, obs: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
        """Next observation from a predicted target (the observation part of it)."""
        predicted = predicted[..., : self.obs_dim]
        return torch.where(self.absolute, predicted, obs + predicted)

    def targets(self, obs, next_obs, reward) -> torch.Tensor:  # noqa: ANN001
        delta = torch.where(self.absolute, next_obs, next_obs - obs)
        return torch.cat([delta, reward[..., None]], -1) if self.learn_reward else delta

    def fit_normalizer(
        self, obs: torch.Tensor, action: torch.Tensor, targets: torch.Tensor | None = None
    ) -> None:
        """Input (and, given ``targets``, output) statistics of the training data."""
        x = self.inputs(obs, action)
        self.in_mean.copy_(x.mean(0))
        self.in_std.copy_(x.std(0).clamp_min(1e-6))
        if targets is not None and self.config.normalize_targets:
            self.out_mean.copy_(targets.mean(0))
            self.out_std.copy_(targets.std(0).clamp_min(1e-6))

    def train_step(
        self, obs: torch.Tensor, action: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """One Adam step on a per-member batch ``[E, M, ...]``; returns the Gaussian NLL
        of the standardised targets."""
        return self.standardised_step(self.standardise(obs, action), self.standard_targets(target))

    def standard_targets(self, target: torch.Tensor) -> torch.Tensor:
        return (target - self.out_mean) / self.out_std

    def standardised_step(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``train_step`` on inputs and targets already standardised (a training round
        standardises its data once instead of every batch: the same values)."""
        layers = list(zip(self.weights, self.biases, strict=True))
        mean, logvar = self.network(x, layers)
        nll = (((mean - target) ** 2) * torch.exp(-logvar) + logvar).mean()
        loss = nll + 0.01 * (self.max_logvar.sum() - self.min_logvar.sum())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return nll.detach()

    @torch.no_grad()
    def member_scores(
        self, obs: torch.Tensor, action: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """Each member's mean squared error ``[E]`` on the standardised targets (every
        target dimension weighs the same), what early stopping and elite choice compare."""
        e = self.config.members
        mean, _ = self.normalised(obs.expand(e, *obs.shape), action.expand(e, *action.shape))
        target = (target - self.out_mean) / self.out_std
        return ((mean - target) ** 2).mean((1, 2))

    def member_weights(self) -> list[torch.Tensor]:
        """Copies of every per-member tensor (weights, biases), to restore members from."""
        return [p.detach().clone() for p in [*self.weights, *self.biases]]

    @torch.no_grad()
    def restore_members(self, saved: list[torch.Tensor], which: torch.Tensor) -> None:
        """Put back the ``saved`` (``member_weights``) parameters of members ``which``."""
        for p, old in zip([*self.weights, *self.biases], saved, strict=True):
            p[which] = old[which]

    @torch.no_grad()
    def one_step_error(
        self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor
    ) -> torch.Tensor:
        """Mean squared error of the members' mean next-observation predictions ``[M]``
        (averaged over members and observation dims)."""
        e = self.config.members
        mean, _ = self(obs.expand(e, *obs.shape), action.expand(e, *action.shape))
        pred = self.next_obs(obs, mean)
        return ((pred - next_obs) ** 2).mean((0, 2))


class EnsembleModel:
    """Trajectory sampling (TS-inf) through a :class:`ProbabilisticEnsemble`.

    ``states`` are observations ``[B, O]``. ``reward_fn`` (the task's ``reward_from_obs``) gives
    reward and termination from observations; without it the learned reward head's mean is
    used and nothing terminates. A particle that terminates collects no more reward.
    ``terminal_value(final_obs[M, O]) -> [M]`` (optional) is added for particles still
    alive at the end of the horizon.
    """

    def __init__(
        self,
        ensemble: ProbabilisticEnsemble,
        reward_fn: RewardFn | None = None,
        particles: int | None = None,
        seed: int = 0,
        terminal_value: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if reward_fn is None and not ensemble.learn_reward:
            raise ConfigError("an ensemble without a reward head needs the task's reward_fn")
        self.ensemble, self.reward_fn, self.terminal_value = ensemble, reward_fn, terminal_value
        self.particles = particles or ensemble.config.particles
        if self.particles % ensemble.config.planned:
            raise ConfigError("particles must be a multiple of the members planned with")
        device = next(ensemble.parameters()).device
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def rollout(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Mean return ``[B, N]`` over each candidate's particles; differentiable in
        ``actions`` when they require gradients (the gradient planner), else computed
        without autograd's bookkeeping (the sampling planners)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and actions.requires_grad):
            return self._rollout(states, actions)

    def _rollout(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Mean return ``[B, N]`` over each candidate's particles.

        The tensors are small, so the time goes to per-op overhead: each step runs only the
        networks and the sampling (what ``ensemble(obs, act, members)`` and a Gaussian draw
        compute, op for op); rewards and terminations, functions of ``(obs, action,
        next_obs)`` alone, are computed for the whole horizon at once afterwards, and the
        returns summed step by step in the same order as before."""
        b, n, h, a = check_plan_shapes(states, actions)
        ens = self.ensemble
        members = ens.planned
        e = len(members)
        per = self.particles // e  # particles per member and candidate
        m = b * n * per
        o = ens.obs_dim
        traj = torch.empty(h + 1, e, m, o, dtype=actions.dtype, device=actions.device)
        start = states.to(actions.dtype)[None, :, None, None].expand(e, b, n, per, o)
        traj[0] = start.reshape(e, m, o)
        acts = actions[:, :, None].expand(b, n, per, h, a).permute(3, 0, 1, 2, 4)
        acts = acts.reshape(h, 1, m, a).expand(h, e, m, a)
        layers = ens.planning_layers(members)
        scaled = ens.config.normalize_targets  # else out_mean 0, out_std 1: identities
        log_var_shift = 2 * ens.out_std.log()
        absolute = bool(ens.absolute.any())
        learned = [] if self.reward_fn is None else None
        for t in range(h):
            obs = traj[t]
            mean, logvar = ens.network(ens.standardise(obs, acts[t]), layers)
            if scaled:
                mean, logvar = ens.out_mean + mean * ens.out_std, logvar + log_var_shift
            noise = torch.randn(mean.shape, generator=self.generator, device=mean.device)
            sample = noise.to(mean.dtype).mul_(logvar.mul(0.5).exp_()).add_(mean)
            if absolute:
                traj[t + 1] = torch.where(ens.absolute, sample[..., :o], obs + sample[..., :o])
            else:
                traj[t + 1] = sample[..., :o] + obs
            if learned is not None:
                learned.append(mean[..., o])
        ret = torch.zeros(e, m, dtype=actions.dtype, device=actions.device)
        if learned is not None:  # the learned head's mean; nothing terminates
            for reward in learned:
                ret += reward
            alive = None
        else:
            flat = h * e * m
            reward, term = self.reward_fn(
                traj[:-1].reshape(flat, o), acts.reshape(flat, a), traj[1:].reshape(flat, o)
            )
            reward, term = reward.reshape(h, e, m), term.reshape(h, e, m)
            ended = term.cumsum(0, dtype=torch.int32) > 0  # terminated at or before step t
            # a particle collects the reward of the step it terminates on, none after
            later = torch.where(ended[:-1], 0.0, reward[1:])
            ret += reward[0]
            for t in range(h - 1):
                ret += later[t]
            alive = ~ended[-1]
        if self.terminal_value is not None:
            value = self.terminal_value(traj[-1].reshape(e * m, o)).reshape(e, m)
            ret += value if alive is None else torch.where(alive, value, 0.0)
        return ret.reshape(e, b, n, per).mean((0, 3))

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())
