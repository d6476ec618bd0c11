"""Exploration noise for deterministic policies, one independent process per engine member.

Noise lives in the policy's normalised action space ([-1, 1] per dimension); the agent adds
it before scaling to the engine's bounds. All draws come from the agent's ``torch.Generator``
so a checkpoint restores the exact noise sequence.
"""

from __future__ import annotations

import math
from typing import Any

import torch


class GaussianNoise:
    """Independent ``N(0, sigma^2)`` per member, dimension and step (TD3/SB3/CleanRL style)."""

    def __init__(
        self,
        num_members: int,
        action_dim: int,
        sigma: float,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.shape = (num_members, action_dim)
        self.sigma = float(sigma)
        self.device = torch.device(device)
        self.dtype = dtype
        self.generator = generator

    def sample(self) -> torch.Tensor:
        eps = torch.randn(
            self.shape, generator=self.generator, device=self.device, dtype=self.dtype
        )
        return eps * self.sigma

    def reset(self, members: torch.Tensor | None = None) -> None:
        """Stateless: nothing to reset."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class OrnsteinUhlenbeckNoise:
    """Temporally correlated noise ``x += theta (mu - x) dt + sigma sqrt(dt) N(0, 1)``.

    With ``dt = 1`` this is the process of the DDPG paper's released code (theta 0.15,
    sigma 0.2). Stable-Baselines3's ``OrnsteinUhlenbeckActionNoise`` defaults to
    ``dt = 1e-2``, which makes the same theta and sigma ten times weaker per step; pass
    ``dt`` to match it. ``reset(mask)`` restarts the process of finished members at ``x0``.
    """

    def __init__(
        self,
        num_members: int,
        action_dim: int,
        sigma: float,
        theta: float = 0.15,
        dt: float = 1.0,
        mu: float = 0.0,
        x0: float = 0.0,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.shape = (num_members, action_dim)
        self.sigma, self.theta, self.dt = float(sigma), float(theta), float(dt)
        self.mu, self.x0 = float(mu), float(x0)
        self.device = torch.device(device)
        self.dtype = dtype
        self.generator = generator
        self.state = torch.full(self.shape, self.x0, device=self.device, dtype=dtype)

    def sample(self) -> torch.Tensor:
        eps = torch.randn(
            self.shape, generator=self.generator, device=self.device, dtype=self.dtype
        )
        drift = (self.mu - self.state) * (self.theta * self.dt)
        self.state = self.state + drift + eps * (self.sigma * math.sqrt(self.dt))
        return self.state

    def reset(self, members: torch.Tensor | None = None) -> None:
        """Reset all members, or those in the bool mask ``[B]`` (no host sync)."""
        if members is None:
            self.state = torch.full_like(self.state, self.x0)
            return
        mask = members.to(device=self.device, dtype=torch.bool).reshape(-1, 1)
        self.state = torch.where(mask, torch.full_like(self.state, self.x0), self.state)

    def state_dict(self) -> dict[str, Any]:
        return {"state": self.state.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = state["state"].to(device=self.device, dtype=self.dtype).clone()


class NoNoise(GaussianNoise):
    """Zero noise (exploration only through the initial random steps)."""

    def __init__(self, num_members: int, action_dim: int, **kwargs: Any) -> None:
        super().__init__(num_members, action_dim, 0.0, **kwargs)

    def sample(self) -> torch.Tensor:
        return torch.zeros(self.shape, device=self.device, dtype=self.dtype)
