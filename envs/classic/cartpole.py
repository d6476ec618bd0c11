"""Continuous-action cart-pole, balance and swing-up, with DeepMind Control's reward shape.

State ``[x, theta, x_dot, theta_dot]`` (theta = 0 upright, unwrapped). Dynamics: a cart of
mass 1 kg on a frictionless rail and a uniform pole of mass 0.1 kg and length 1 m (the
masses and length of DMC's ``cartpole.xml``), driven by the horizontal force ``10 a`` with
``a`` clipped to ``[-1, 1]`` (DMC's gear 10). The equations of motion are the classic
Barto/Gymnasium CartPole ones for a uniform rod (half length ``h``)::

    tmp   = (F + m h theta_dot^2 sin(theta)) / (M + m)
    theta_ddot = (g sin(theta) - cos(theta) tmp) / (h (4/3 - m cos(theta)^2 / (M + m)))
    x_ddot     = tmp - m h theta_ddot cos(theta) / (M + m)

Integrator: semi-implicit Euler (velocities first, then positions with the new velocities),
``dt = 0.01`` s (DMC's control step), 1000 steps per episode (DMC's 10 s), no termination.

Reward (DMC's smooth cartpole reward, the same for balance and swing-up)::

    upright  = (cos(theta) + 1) / 2
    centered = (1 + tol(x, margin=2)) / 2
    control  = (4 + tol_quadratic(a, margin=1)) / 5
    velocity = (1 + tol(theta_dot, margin=5)) / 2
    reward   = upright * centered * control * velocity     in [0, 1]

with ``tol(z, margin) = 0.1 ** ((z / margin) ** 2)`` (dm_control's gaussian tolerance,
bounds (0, 0), value 0.1 at the margin) and ``tol_quadratic(z, 1) = max(1 - z^2, 0)``.
The reward uses the post-step state and the clipped action.

Where it differs from DMC: DMC simulates MuJoCo's model (a capsule pole whose inertia
includes its end caps, small joint damping, MuJoCo's integrator) while this task integrates
the uniform-rod equations above without damping or joint limits, so trajectories differ
numerically; the reset distributions follow DMC (balance: ``x ~ U(-0.1, 0.1)``,
``theta ~ U(-0.034, 0.034)``; swing-up: ``x ~ 0.01 N(0,1)``, ``theta ~ pi + 0.01 N(0,1)``;
both: velocities ``0.01 N(0,1)``). Observation ``[x, cos theta, sin theta, x_dot,
theta_dot]``, DMC's position + velocity layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rlwb.envs.classic.base import TorchTask

_LOG_TENTH = math.log(0.1)


def gaussian_tolerance(z: torch.Tensor, margin: float) -> torch.Tensor:
    """dm_control ``tolerance(z, bounds=(0, 0), margin, sigmoid='gaussian')``."""
    return torch.exp(_LOG_TENTH * (z / margin) ** 2)


@dataclass
class CartPole(TorchTask):
    """Cart-pole with a continuous force; ``swing_up`` picks the reset distribution."""

    swing_up: bool = False
    gravity: float = 9.81
    cart_mass: float = 1.0
    pole_mass: float = 0.1
    pole_length: float = 1.0
    force_gear: float = 10.0

    max_episode_steps = 1000
    dt = 0.01
    state_names = ("x", "theta", "x_dot", "theta_dot")
    obs_dim = 5
    action_low = (-1.0,)
    action_high = (1.0,)

    def reset_state(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.swing_up:
            pos = 0.01 * self.normal(generator, n, 2)
            pos = pos + torch.tensor([0.0, math.pi], device=self.device, dtype=self.dtype)
        else:
            lim = torch.tensor([0.1, 0.034], device=self.device, dtype=self.dtype)
            pos = self.uniform(generator, n, -lim, lim, dim=2)
        return torch.cat([pos, 0.01 * self.normal(generator, n, 2)], dim=1)

    def dynamics(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x, th, xd, thd = state.unbind(1)
        force = self.force_gear * action[:, 0].clamp(-1.0, 1.0)
        total, m, h = self.cart_mass + self.pole_mass, self.pole_mass, 0.5 * self.pole_length
        sin, cos = torch.sin(th), torch.cos(th)
        tmp = (force + m * h * thd**2 * sin) / total
        thdd = (self.gravity * sin - cos * tmp) / (h * (4.0 / 3.0 - m * cos**2 / total))
        xdd = tmp - m * h * thdd * cos / total
        xd = xd + xdd * self.dt
        thd = thd + thdd * self.dt
        return self.pack([x + xd * self.dt, th + thd * self.dt, xd, thd])

    def reward(
        self, state: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        a = action[:, 0].clamp(-1.0, 1.0)
        upright = (torch.cos(next_state[:, 1]) + 1) / 2
        centered = (1 + gaussian_tolerance(next_state[:, 0], 2.0)) / 2
        control = (4 + (1 - a**2).clamp(min=0.0)) / 5
        velocity = (1 + gaussian_tolerance(next_state[:, 3], 5.0)) / 2
        return upright * centered * control * velocity, {"upright": upright}

    def observation(self, state: torch.Tensor) -> torch.Tensor:
        th = state[:, 1]
        return torch.stack(
            [state[:, 0], torch.cos(th), torch.sin(th), state[:, 2], state[:, 3]], dim=1
        )
