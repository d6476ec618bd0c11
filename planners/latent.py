"""The latent-model slot: what TD-MPC's world model must offer a planner.

A :class:`LatentWorld` has four batched functions (TD-MPC's h, d, R and Q(z, pi(z))) and a
discount. :class:`LatentModel` turns one into the planner's :class:`~rlwb.planners.Model`:
``states`` are latents ``z[B, Z]`` (the agent encodes its observations once per control step)
and the return of a sequence is ``sum_t discount^t R(z_t, a_t) + discount^H V(z_H)``.
:meth:`LatentModel.policy_prior` rolls a policy through the dynamics for the planner's
policy-prior candidates (TD-MPC's ``num_pi_trajs``). :class:`LinearLatentWorld` is a tiny
differentiable implementation for tests and examples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from rlwb.planners.models import check_plan_shapes


@runtime_checkable
class LatentWorld(Protocol):
    """TD-MPC's model components; every function is batched over a leading dim."""

    discount: float

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs[M, ...] -> z[M, Z]``."""
        ...

    def next(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``z[M, Z], a[M, A] -> z'[M, Z]``."""
        ...

    def reward(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``z[M, Z], a[M, A] -> r[M]``."""
        ...

    def value(self, z: torch.Tensor) -> torch.Tensor:
        """Terminal value ``z[M, Z] -> V[M]`` (TD-MPC: Q(z, pi(z)))."""
        ...


class LatentModel:
    """A :class:`LatentWorld` as a planner model over latent states ``[B, Z]``."""

    def __init__(self, world: LatentWorld) -> None:
        self.world = world

    def rollout(
        self, states: torch.Tensor, actions: torch.Tensor, **value_inputs: torch.Tensor
    ) -> torch.Tensor:
        """Returns ``[B, N]``; ``value_inputs`` go to ``world.value`` (TD-MPC hands over its
        policy noise drawn beforehand, so that a compiled rollout draws no random numbers)."""
        b, n, h, a = check_plan_shapes(states, actions)
        z = states.repeat_interleave(n, 0)
        flat = actions.reshape(b * n, h, a)
        ret = torch.zeros(b * n, dtype=z.dtype, device=z.device)
        weight = 1.0
        for t in range(h):
            ret = ret + weight * self.world.reward(z, flat[:, t])
            z = self.world.next(z, flat[:, t])
            weight *= self.world.discount
        return (ret + weight * self.world.value(z, **value_inputs)).reshape(b, n)

    def policy_prior(
        self,
        states: torch.Tensor,
        policy: Callable[[torch.Tensor], torch.Tensor],
        samples: int,
        horizon: int,
    ) -> torch.Tensor:
        """``[B, samples, H, A]`` sequences of ``policy`` (stochastic: a sample per call)
        rolled through the latent dynamics from each member's latent."""
        z = states.repeat_interleave(samples, 0)
        steps = []
        for _ in range(horizon):
            act = policy(z)
            steps.append(act)
            z = self.world.next(z, act)
        return torch.stack(steps, 1).reshape(states.shape[0], samples, horizon, -1)


class LinearLatentWorld(nn.Module):
    """``z = W obs``, ``z' = A z + B a``, ``R = -|z|^2 - c |a|^2``, ``V = -|z|^2``: a tiny
    differentiable latent world (tests, examples) whose best action steers z to 0."""

    def __init__(self, obs_dim: int, latent_dim: int, action_dim: int, discount: float = 0.99):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.W = nn.Parameter(torch.randn(latent_dim, obs_dim, generator=g) / obs_dim**0.5)
        self.A = nn.Parameter(torch.eye(latent_dim) * 1.02)
        self.B = nn.Parameter(torch.randn(latent_dim, action_dim, generator=g) * 0.3)
        self.action_cost = 0.01
        self.discount = discount

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return obs @ self.W.T

    def next(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return z @ self.A.T + action @ self.B.T

    def reward(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return -(z**2).sum(1) - self.action_cost * (action**2).sum(1)

    def value(self, z: torch.Tensor) -> torch.Tensor:
        return -(z**2).sum(1)
