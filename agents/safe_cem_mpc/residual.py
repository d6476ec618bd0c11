"""Nominal quadrotor model plus a learned residual acceleration: safe CEM-MPC's planning model.

Implements the planner's model protocol ``rollout(states[B, S], actions[B, N, H, A]) ->
returns[B, N]`` with model state ``[t, x, y, z, vx, vy, vz]`` (the observable part of the
quadrotor's state). Each step integrates the task's translational dynamics exactly as the
task does (semi-implicit Euler), with the wind replaced by the residual model's estimate::

    v' = v + (clip(u) + d_hat) dt,   p' = p + v' dt,   d_hat = GP mean at (v, t)  (0: nominal)

Rollouts use the GP *mean* (``sample=False``, the default): per-step draws from the GP's
marginals are not samples of the disturbance along a trajectory (those need the joint
posterior over the H visited inputs), and CEM's elite selection on noisy returns favours
lucky draws. Uncertainty instead enters through the CBF tightening of the safety filter;
``sample=True`` adds independent ``N(0, var)`` per-step noise for those who want it.

The objective is deliberately non-differentiable, as in the paper: the task's tracking cost
(position and velocity error, input effort) plus ``collision_weight`` times the indicator
that the predicted position is within ``collision_margin`` of an obstacle, summed over the
horizon.
"""

from __future__ import annotations

import torch

from rlwb.envs.quadrotor import obstacles as obs_lib
from rlwb.envs.quadrotor.task import Quadrotor
from rlwb.planners.gp import SlidingWindowGP
from rlwb.planners.models import check_plan_shapes


def gp_features(vel: torch.Tensor, t: torch.Tensor, features: str) -> torch.Tensor:
    """GP inputs from velocity ``[..., 3]`` and time ``[...]``: ``velocity`` or
    ``velocity_time`` (time lets the window extrapolate a gust's recent level)."""
    if features == "velocity":
        return vel
    return torch.cat([vel, t[..., None]], -1)


class ResidualModel:
    """Quadrotor dynamics of ``task`` without wind, plus ``gp``'s residual (None: nominal)."""

    def __init__(
        self,
        task: Quadrotor,
        gp: SlidingWindowGP | None,
        features: str = "velocity_time",
        collision_weight: float = 50.0,
        collision_margin: float = 0.1,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        self.task, self.gp, self.features = task, gp, features
        self.collision_weight, self.collision_margin = collision_weight, collision_margin
        self.sample, self.generator = sample, generator

    def disturbance(
        self, vel: torch.Tensor, t: torch.Tensor, variance: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Estimated disturbance mean ``[B, N, 3]`` (and variance ``[B, N]``) at ``vel[B, N,
        3]``, ``t[B, N]``; zeros for the nominal model."""
        if self.gp is None:
            zero = torch.zeros_like(vel)
            return zero, (zero[..., 0] if variance else None)
        return self.gp.predict(gp_features(vel, t, self.features), variance=variance)

    def rollout(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        task = self.task
        b, n, horizon, _ = check_plan_shapes(states, actions)
        if states.shape[1] != 7:
            raise ValueError(f"model states must be [B, 7] = [t, p, v], got {tuple(states.shape)}")
        states = states.to(actions)
        t = states[:, None, 0].expand(b, n)
        pos = states[:, None, 1:4].expand(b, n, 3)
        vel = states[:, None, 4:7].expand(b, n, 3)
        cost = torch.zeros(b, n, dtype=actions.dtype, device=actions.device)
        obstacles = task.obstacle_tensor.to(actions)
        for k in range(horizon):
            u = task.clip_action(actions[:, :, k])
            d, var = self.disturbance(vel, t, variance=self.sample)
            if self.sample:
                noise = torch.randn(vel.shape, generator=self.generator, device=vel.device)
                d = d + var[..., None].sqrt() * noise.to(vel)
            vel = vel + (u + d) * task.dt
            pos = pos + vel * task.dt
            t = t + task.dt
            cost = cost + task.tracking_cost(t, pos, vel, u)
            if obstacles.shape[0]:
                clearance = obs_lib.min_clearance(pos, obstacles, task.body_radius)
                cost = cost + self.collision_weight * (clearance < self.collision_margin)
        return -cost
