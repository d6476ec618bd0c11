"""One sampling planner core: CEM, MPPI, iCEM and random shooting, batched over members.

A plan is a tensor ``[B, N, H, A]``: B real members, N candidate sequences, horizon H. All
members plan in one call per iteration (one ``model.rollout``), with no Python loop over
members or samples. Sampling runs in the normalised action space ``[-1, 1]`` (so ``init_std``
and ``min_std`` mean the same on every task); the model sees actions in task units.

Methods (``SamplingConfig.method``):

* ``"cem"`` -- the cross-entropy method: refit mean and spread to the ``elites`` best,
  smoothed with ``momentum`` (``new = momentum * old + (1 - momentum) * fit``), std floored
  at ``min_std``. ``sampling`` picks how candidates are drawn: ``"clipped"`` (the default)
  clips Gaussian samples to the bounds and smooths the std; ``"truncated"`` is PETS' /
  mbrl-lib's CEM: each step's variance is first bounded by the distance to the nearer
  action bound, ``var <= (min(mean - low, high - mean) / 2)^2``, samples are drawn from a
  normal truncated at two standard deviations (so they never leave the bounds and need no
  clipping; their variance is ``TRUNCATED_VARIANCE`` = 0.774 times the bounded one), and the
  variance, not the std, is smoothed.
* ``"mppi"`` -- MPPI-style weighting (Williams et al. 2017, as used in TD-MPC): the mean is
  the softmax(return / ``temperature``)-weighted average of the ``elites`` best samples
  (``elites = samples`` for classic MPPI over all samples); the std is the weighted spread
  (``update_std``) or stays at ``init_std``.
* ``"icem"`` -- iCEM (Pinneri et al. 2020): CEM with colored noise of exponent
  ``noise_beta`` along the horizon, a fraction ``keep_elites`` of the elites carried to the
  next iteration and (shifted) to the next control step, the population shrinking by
  ``population_decay`` per iteration, the mean added as a candidate in the last iteration,
  and the best sequence's first action executed.
* ``"random"`` -- random shooting: ``samples`` uniform sequences, best one's first action.

Warm start: after each call every member's mean is shifted one step (last step filled with
the middle of the range); :meth:`SamplingPlanner.reset` forgets it for members that start a
new episode. The std restarts at ``init_std`` every control step (PETS). Optional policy-prior
candidates (``prior``: a ``[B, P, H, A]`` tensor or ``states -> [B, P, H, A]``, as TD-MPC mixes
in) join the samples of every iteration. A terminal value is the model's business.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from rlwb.errors import ConfigError
from rlwb.planners.base import PlannerBase, Prior, shift
from rlwb.planners.models import Model

METHODS = ("cem", "mppi", "icem", "random")
TRUNCATION = 2.0
"""Truncated-normal sampling keeps draws within this many standard deviations (PETS)."""
_PHI = math.exp(-(TRUNCATION**2) / 2) / math.sqrt(2 * math.pi)
TRUNCATED_VARIANCE = 1 - 2 * TRUNCATION * _PHI / math.erf(TRUNCATION / math.sqrt(2))
"""Variance of a unit normal truncated to ``[-TRUNCATION, TRUNCATION]`` (0.774)."""


@dataclass
class SamplingConfig:
    """Sampling planner settings. Defaults are PETS/mbrl-lib's CEM on HalfCheetah."""

    method: Literal["cem", "mppi", "icem", "random"] = "cem"
    samples: int = 400
    """Candidate sequences per member and iteration (N)."""
    horizon: int = 30
    iterations: int = 5
    elites: int = 40
    """Best samples the distribution is refit to (CEM, iCEM) or weighted over (MPPI)."""
    temperature: float = 0.5
    """MPPI softmax temperature, in units of return."""
    momentum: float = 0.1
    """Weight of the old mean/std in each refit (PETS' alpha)."""
    init_std: float = 0.5
    """Initial std, in the normalised action space [-1, 1]."""
    min_std: float = 0.05
    update_std: bool = True
    """MPPI: refit the std to the weighted samples (TD-MPC) or keep ``init_std`` (classic)."""
    noise_beta: float = 0.0
    """Colored-noise exponent along the horizon (0 white, 2-3 as in iCEM)."""
    keep_elites: float = 0.0
    """Fraction of elites kept into the next iteration and (shifted) the next step."""
    population_decay: float = 1.0
    """iCEM: samples shrink by this factor per iteration (never below 2 x elites)."""
    prior_samples: int = 0
    """Policy-prior candidates the agent supplies per member (TD-MPC's num_pi_trajs)."""
    execute: Literal["mean", "best", "sample"] = "mean"
    """Act on the first action of the final mean, of the best sequence seen, or of one of
    the last iteration's elites drawn by its weight (TD-MPC; CEM's elites weigh equally)."""
    momentum_std: bool = True
    """Smooth the std with ``momentum`` like the mean (PETS) or refit it each iteration
    (TD-MPC: momentum on the mean only)."""
    std_ramp: float = 1.0
    """Initial std along the horizon: ``init_std / std_ramp`` at the first step growing
    geometrically to ``init_std`` at the last (1: flat, the papers'). A deviation for
    unstable systems planned with a warm start: a change early in a sequence grows along
    it, so early steps are perturbed less and later ones, where the shifted plan is new,
    more (measured on InvertedPendulum in benchmarks/RESULTS.md)."""
    sampling: Literal["clipped", "truncated"] = "clipped"
    """CEM/MPPI draws: Gaussian clipped to the bounds with the std smoothed, or PETS'
    truncated normal with the variance bounded by the distance to the bounds and the
    variance smoothed (see the module docstring)."""
    tie_break: Literal["none", "effort"] = "none"
    """Order of candidates with exactly equal returns: sample order (``"none"``, the
    papers' topk) or the smaller mean squared normalised action first (``"effort"``, a
    deviation). Only exact ties move, so continuous rewards plan the same either way;
    survival-only rewards (InvertedPendulum) tie survivors. Measured there it did not help
    (benchmarks/RESULTS.md), hence off by default."""

    @classmethod
    def icem(cls, **overrides: Any) -> SamplingConfig:
        """iCEM's published defaults (Pinneri et al. 2020, table S2) for ``**overrides``."""
        base = dict(
            method="icem",
            samples=300,
            elites=10,
            iterations=3,
            noise_beta=2.5,
            keep_elites=0.3,
            population_decay=1.25,
            momentum=0.1,
            execute="best",
        )
        return cls(**{**base, **overrides})

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"planner method must be one of {METHODS}, got {self.method!r}")
        for name in ("samples", "horizon", "iterations", "elites"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"planner {name} must be an integer >= 1, got {value!r}")
        if self.elites > self.samples:
            raise ConfigError(f"planner elites ({self.elites}) > samples ({self.samples})")
        checks = (
            ("temperature", self.temperature > 0, "> 0"),
            ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
            ("init_std", self.init_std > 0, "> 0"),
            ("min_std", 0 <= self.min_std <= self.init_std, "in [0, init_std]"),
            ("keep_elites", 0 <= self.keep_elites <= 1, "in [0, 1]"),
            ("population_decay", self.population_decay >= 1, ">= 1"),
            ("std_ramp", self.std_ramp >= 1, ">= 1"),
            ("noise_beta", self.noise_beta >= 0, ">= 0"),
            ("prior_samples", self.prior_samples >= 0, ">= 0"),
        )
        for name, ok, what in checks:
            if not ok:
                raise ConfigError(f"planner {name} must be {what}, got {getattr(self, name)!r}")
        if self.tie_break not in ("effort", "none"):
            raise ConfigError(
                f"planner tie_break must be 'effort' or 'none', got {self.tie_break!r}"
            )
        if self.sampling not in ("clipped", "truncated"):
            raise ConfigError(
                f"planner sampling must be 'clipped' or 'truncated', got {self.sampling!r}"
            )
        if self.execute not in ("mean", "best", "sample"):
            raise ConfigError(
                f"planner execute must be 'mean', 'best' or 'sample', got {self.execute!r}"
            )


def colored_noise(
    shape: tuple[int, ...], beta: float, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Unit-variance Gaussian noise with power spectrum ~ 1/f^beta along the LAST axis
    (iCEM's temporally correlated samples); ``beta = 0`` is white noise."""
    n = shape[-1]
    if beta == 0 or n < 2:
        return torch.randn(shape, generator=generator, device=device)
    freqs = torch.fft.rfftfreq(n, device=device)
    freqs[0] = freqs[1]  # the lowest frequency stands in for DC (no infinite power)
    scale = freqs ** (-beta / 2)
    re = torch.randn((*shape[:-1], len(freqs)), generator=generator, device=device) * scale
    im = torch.randn((*shape[:-1], len(freqs)), generator=generator, device=device) * scale
    im[..., 0] = 0  # DC (and Nyquist for even n) are real; sqrt(2) keeps their power
    re[..., 0] *= math.sqrt(2)
    weight = scale.clone()
    if n % 2 == 0:
        im[..., -1] = 0
        re[..., -1] *= math.sqrt(2)
        weight[-1] /= math.sqrt(2)
    # std of the inverse FFT: each real output sample sums the spectrum's power
    sigma = 2 * torch.sqrt((weight[1:] ** 2).sum() + weight[0] ** 2 / 2) / n
    return torch.fft.irfft(torch.complex(re, im), n=n) / sigma


def truncated_normal(
    shape: tuple[int, ...], generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Unit normal draws truncated to ``[-TRUNCATION, TRUNCATION]`` (inverse CDF of a
    uniform draw between the two bounds' probabilities: exact, no rejection loop)."""
    edge = 0.5 * (1 + math.erf(-TRUNCATION / math.sqrt(2)))
    u = torch.rand(shape, generator=generator, device=device) * (1 - 2 * edge) + edge
    return (math.sqrt(2) * torch.erfinv(2 * u - 1)).clamp(-TRUNCATION, TRUNCATION)


def bounded_std(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``std`` limited so that ``TRUNCATION`` stds around ``mean`` stay in ``[-1, 1]``."""
    room = torch.minimum(1 - mean, mean + 1).clamp_min(0) / TRUNCATION
    return torch.minimum(std, room)


class SamplingPlanner(PlannerBase):
    """Plans ``[B, N, H, A]`` candidates for B members at once; keeps per-member warm starts.

    ``plan(model, states[B, S], prior=None) -> actions[B, A]`` in task units.
    """

    config: SamplingConfig

    # ------------------------------------------------------------------ planning
    def plan(self, model: Model, states: torch.Tensor, prior: Prior | None = None) -> torch.Tensor:
        """First action ``[B, A]`` (task units) of each member's plan."""
        cfg = self.config
        b = states.shape[0]
        h, a = cfg.horizon, self.action_dim
        prior_u = self._prior(states, prior, b)
        if cfg.method == "random":
            u = torch.rand(b, cfg.samples, h, a, generator=self.generator, device=self.device)
            u = self._join(u * 2 - 1, prior_u)
            returns = self._score(model, states, u)
            top_ret, best = self._top(returns, u, 1)
            seq = u[torch.arange(b, device=self.device), best[:, 0]]
            self.last_returns = top_ret[:, 0]
            self.last_plan = self.to_task(seq)
            return self.last_plan[:, 0]

        mean = self._start(b)
        std = self._initial_std(mean)
        kept = self.kept if cfg.keep_elites > 0 else None
        best_ret = torch.full((b,), -math.inf, device=self.device)
        best_seq = mean.clone()
        rows = torch.arange(b, device=self.device)
        truncated = cfg.sampling == "truncated"
        for i in range(cfg.iterations):
            n = cfg.samples
            if cfg.population_decay > 1:  # iCEM: shrink, but keep at least 2 x elites
                n = min(n, max(int(n / cfg.population_decay**i), 2 * cfg.elites))
            if truncated:
                noise = truncated_normal((b, n, h, a), self.generator, self.device)
                u = (mean[:, None] + bounded_std(mean, std)[:, None] * noise).clamp(-1, 1)
            else:
                noise = colored_noise((b, n, a, h), cfg.noise_beta, self.generator, self.device)
                u = (mean[:, None] + std[:, None] * noise.transpose(-1, -2)).clamp(-1, 1)
            if kept is not None:
                u = torch.cat([u, kept], dim=1)
            if cfg.method == "icem" and i == cfg.iterations - 1:
                u = torch.cat([u, mean[:, None]], dim=1)
            u = self._join(u, prior_u)
            returns = self._score(model, states, u)
            top_ret, top = self._top(returns, u, cfg.elites)  # [B, K]
            elites = u[rows[:, None], top]  # [B, K, H, A]
            better = top_ret[:, 0] > best_ret
            best_ret = torch.where(better, top_ret[:, 0], best_ret)
            best_seq = torch.where(better[:, None, None], elites[:, 0], best_seq)
            if cfg.method == "mppi":
                weights = torch.softmax((top_ret - top_ret[:, :1]) / cfg.temperature, dim=1)
                w = weights[:, :, None, None]
                fit_mean = (w * elites).sum(1)
                if cfg.update_std:
                    fit_std = ((w * (elites - fit_mean[:, None]) ** 2).sum(1)).sqrt()
                else:
                    fit_std = torch.full_like(fit_mean, cfg.init_std)
            else:
                weights = torch.full_like(top_ret, 1.0 / cfg.elites)
                fit_mean, fit_std = elites.mean(1), elites.std(1, unbiased=False)
            mean = cfg.momentum * mean + (1 - cfg.momentum) * fit_mean
            if cfg.momentum_std and truncated:  # smooth the variance (PETS)
                fit_std = (cfg.momentum * std**2 + (1 - cfg.momentum) * fit_std**2).sqrt()
            elif cfg.momentum_std:
                fit_std = cfg.momentum * std + (1 - cfg.momentum) * fit_std
            std = fit_std.clamp_min(cfg.min_std)
            if cfg.keep_elites > 0:
                kept = elites[:, : max(1, int(round(cfg.keep_elites * cfg.elites)))]
        seq = best_seq if cfg.execute == "best" else mean
        if cfg.execute == "sample":
            pick = torch.multinomial(weights, 1, generator=self.generator).squeeze(1)
            seq = elites[rows, pick]
        self.last_std = std[:, 0]
        self.mean = shift(mean)
        self.kept = shift(kept) if kept is not None else None
        self.last_returns = best_ret
        self.last_plan = self.to_task(seq)
        return self.last_plan[:, 0]

    def _initial_std(self, mean: torch.Tensor) -> torch.Tensor:
        """``[B, H, A]`` std of the first iteration (``init_std``, ramped by ``std_ramp``)."""
        cfg, h = self.config, mean.shape[1]
        std = torch.full_like(mean, cfg.init_std)
        if cfg.std_ramp == 1 or h < 2:
            return std
        steps = torch.arange(h, dtype=mean.dtype, device=mean.device) / (h - 1) - 1
        return std * (cfg.std_ramp**steps)[None, :, None]

    @staticmethod
    def _join(u: torch.Tensor, prior_u: torch.Tensor | None) -> torch.Tensor:
        return u if prior_u is None else torch.cat([u, prior_u], dim=1)

    def _top(
        self, returns: torch.Tensor, u: torch.Tensor, k: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` best returns ``[B, k]`` and their candidate indices, best first; exact
        ties ordered by ``config.tie_break``."""
        if self.config.tie_break == "none":
            return returns.topk(k, dim=1)
        effort = (u**2).mean((-2, -1))  # [B, N]
        by_effort = effort.argsort(dim=1)  # then a stable sort by return keeps that order
        order = returns.gather(1, by_effort).argsort(dim=1, descending=True, stable=True)
        top = by_effort.gather(1, order[:, :k])
        return returns.gather(1, top), top

    def _score(self, model: Model, states: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self._ranked(model.rollout(states, self.to_task(u)), u)
