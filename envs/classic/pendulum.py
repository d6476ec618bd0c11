"""Pendulum-v1, batched in torch: Gymnasium's ``PendulumEnv`` with the same numbers.

State ``[theta, theta_dot]`` (theta unwrapped, 0 = upright). Integrator: semi-implicit
Euler with ``dt = 0.05``, exactly Gymnasium's update::

    u = clip(a, -2, 2)
    theta_dot' = clip(theta_dot + (3 g / (2 l) sin(theta) + 3 / (m l^2) u) dt, -8, 8)
    theta'     = theta + theta_dot' dt

Reward from the *pre-step* state: ``-(wrap(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2)``.
Never terminates; the time limit (200 steps) truncates. Reset: ``theta ~ U[-pi, pi]``,
``theta_dot ~ U[-1, 1]``. Observation ``[cos theta, sin theta, theta_dot]``.

Non-smooth parts (for gradients): the action clip (zero gradient outside [-2, 2]), the
speed clip (zero gradient while saturated) and the angle wrap in the reward (a jump at
theta = pi, where the gradient of the cost is still defined almost everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rlwb.envs.classic.base import TorchTask, angle_normalize


@dataclass
class Pendulum(TorchTask):
    """Gymnasium's Pendulum-v1; ``g`` is its only constructor argument."""

    g: float = 10.0

    gym_id = "Pendulum-v1"
    max_episode_steps = 200
    dt = 0.05
    state_names = ("theta", "theta_dot")
    obs_dim = 3
    action_low = (-2.0,)
    action_high = (2.0,)
    obs_low = (-1.0, -1.0, -8.0)
    obs_high = (1.0, 1.0, 8.0)
    max_speed = 8.0
    max_torque = 2.0
    m = 1.0
    length = 1.0

    def reset_state(self, n: int, generator: torch.Generator) -> torch.Tensor:
        high = torch.tensor([np.pi, 1.0], device=self.device, dtype=self.dtype)
        return self.uniform(generator, n, -high, high, dim=2)

    def _torque(self, action: torch.Tensor) -> torch.Tensor:
        return action[:, 0].clamp(-self.max_torque, self.max_torque)

    def dynamics(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        th, thdot = state[:, 0], state[:, 1]
        u = self._torque(action)
        accel = 3 * self.g / (2 * self.length) * torch.sin(th) + 3.0 / (self.m * self.length**2) * u
        newthdot = (thdot + accel * self.dt).clamp(-self.max_speed, self.max_speed)
        return self.pack([th + newthdot * self.dt, newthdot])

    def reward(
        self, state: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        u = self._torque(action)
        cost = angle_normalize(state[:, 0]) ** 2 + 0.1 * state[:, 1] ** 2 + 0.001 * u**2
        return -cost, {}

    def observation(self, state: torch.Tensor) -> torch.Tensor:
        th = state[:, 0]
        return torch.stack([torch.cos(th), torch.sin(th), state[:, 1]], dim=1)

    def reward_from_obs(
        self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reward ``[M]`` and termination ``[M]`` (never) of transitions given as
        observations (model-based planners): :meth:`reward` with the wrapped angle read from
        the observation before the step (exact up to rounding)."""
        theta = torch.atan2(obs[:, 1], obs[:, 0])
        u = self._torque(action)
        reward = -(theta**2 + 0.1 * obs[:, 2] ** 2 + 0.001 * u**2)
        return reward, torch.zeros_like(reward, dtype=torch.bool)
