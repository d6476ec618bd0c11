"""Gradient-based planning: Adam on the action sequence through a differentiable model.

After "Gradient-based Planning with World Models" (Jyothir S V, Jalagam, LeCun, Sobal
2023): instead of sampling, the open-loop plan itself is optimised by back-propagating the
model's return to the actions. Here ``samples`` sequences per member are optimised in
parallel (restarts; one of them is the shifted warm start, others are noise around it plus
any policy-prior sequences), by Adam in the normalised action space with projection onto
[-1, 1] after each step; the best sequence's first action is executed. ``plan`` has the
same signature as :class:`rlwb.planners.sampling.SamplingPlanner`'s.

The model must return ``[B, N]`` returns differentiable w.r.t. the actions: a torch-backend
task through ``EngineModel(..., differentiable=True)``, an :class:`EnsembleModel`, or a
latent model. Choices the paper leaves open are ours: projection (not a tanh
reparametrisation) and a fixed iteration count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from rlwb.errors import ConfigError
from rlwb.planners.base import PlannerBase, Prior, shift
from rlwb.planners.models import Model


@dataclass
class GradientConfig:
    """Gradient planner settings."""

    samples: int = 8
    """Sequences optimised in parallel per member (restarts)."""
    horizon: int = 30
    iterations: int = 30
    """Adam steps per control step."""
    lr: float = 0.1
    """Adam step size, in the normalised action space [-1, 1]."""
    init_std: float = 0.3
    """Spread of the restarts around the warm start."""

    def validate(self) -> None:
        for name in ("samples", "horizon", "iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"gradient planner {name} must be an integer >= 1, got {value!r}")
        if not self.lr > 0 or not self.init_std >= 0:
            raise ConfigError("gradient planner lr must be > 0 and init_std >= 0")


class GradientPlanner(PlannerBase):
    """Plans ``[B, N, H, A]`` by gradient ascent on the model's return; per-member warm
    starts as the sampling planner (``reset(mask)`` forgets them)."""

    config: GradientConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first_returns: torch.Tensor | None = None  # [B] best return before optimising

    def plan(self, model: Model, states: torch.Tensor, prior: Prior | None = None) -> torch.Tensor:
        cfg = self.config
        b = states.shape[0]
        mean = self._start(b)
        noise = torch.randn(
            b,
            cfg.samples,
            cfg.horizon,
            self.action_dim,
            generator=self.generator,
            device=self.device,
        )
        noise[:, 0] = 0  # the warm start itself is one of the restarts
        u = (mean[:, None] + cfg.init_std * noise).clamp(-1, 1)
        prior_u = self._prior(states, prior, b)
        if prior_u is not None:
            u = torch.cat([u, prior_u], dim=1)
        u = u.detach().requires_grad_(True)
        adam = _Adam(u, cfg.lr)
        rows = torch.arange(b, device=self.device)
        best_ret = torch.full((b,), -torch.inf, device=self.device)
        best_seq = mean.clone()
        with torch.enable_grad():
            for i in range(cfg.iterations + 1):
                returns = model.rollout(states, self.to_task(u))
                top_ret, top = self._ranked(returns, u).max(1)
                if i == 0:
                    self.first_returns = top_ret
                better = top_ret > best_ret
                best_ret = torch.where(better, top_ret, best_ret)
                best_seq = torch.where(better[:, None, None], u.detach()[rows, top], best_seq)
                if i == cfg.iterations:
                    break  # the last evaluation only scores the final step's sequences
                (grad,) = torch.autograd.grad(-returns.sum(), u)
                adam.step(grad.nan_to_num(0.0))
                with torch.no_grad():
                    u.clamp_(-1, 1)
        self.mean = shift(best_seq)
        self.last_returns = best_ret
        self.last_plan = self.to_task(best_seq)
        return self.last_plan[:, 0]


class _Adam:
    """Adam (Kingma & Ba 2015, default betas) on one tensor: ``torch.optim.Adam`` would
    import torch._dynamo on first use, seconds of start-up for a planner."""

    def __init__(self, param: torch.Tensor, lr: float, betas=(0.9, 0.999), eps=1e-8) -> None:
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)
        self.t = 0

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        b1, b2 = self.betas
        self.t += 1
        self.m.lerp_(grad, 1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        m_hat = self.m / (1 - b1**self.t)
        v_hat = self.v / (1 - b2**self.t)
        self.param.sub_(self.lr * m_hat / (v_hat.sqrt() + self.eps))
