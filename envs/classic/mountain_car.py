"""MountainCarContinuous-v0, batched in torch: Gymnasium's ``Continuous_MountainCarEnv``.

State ``[position, velocity]``. Integrator: semi-implicit Euler with unit time step,
exactly Gymnasium's update::

    f  = clip(a, -1, 1)
    v' = clip(v + 0.0015 f - 0.0025 cos(3 x), -0.07, 0.07)
    x' = clip(x + v', -1.2, 0.6);  v' = 0 where x' == -1.2 and v' < 0

Terminates when ``x' >= 0.45 and v' >= goal_velocity``; reward ``100 [terminated] - 0.1 a^2``
with the *unclipped* action, as Gymnasium does. Reset: ``x ~ U[-0.6, -0.4]``, ``v = 0``.
Time limit 999 steps.

Gymnasium stores the state as float32 after every step; with ``float32_state=True``
(default) the torch task rounds the same way, so trajectories match Gymnasium's to float32
round-off in either engine dtype. The rounding passes gradients straight through.
Non-smooth parts: the action, speed and position clips, the inelastic left wall and the
termination bonus (a step in the reward).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlwb.envs.classic.base import TorchTask


@dataclass
class MountainCarContinuous(TorchTask):
    """Gymnasium's MountainCarContinuous-v0; ``goal_velocity`` is its constructor argument."""

    goal_velocity: float = 0.0
    float32_state: bool = True

    gym_id = "MountainCarContinuous-v0"
    max_episode_steps = 999
    dt = 1.0
    state_names = ("position", "velocity")
    obs_dim = 2
    action_low = (-1.0,)
    action_high = (1.0,)
    obs_low = (-1.2, -0.07)
    obs_high = (0.6, 0.07)
    min_position = -1.2
    max_position = 0.6
    max_speed = 0.07
    goal_position = 0.45
    power = 0.0015

    def reset_state(self, n: int, generator: torch.Generator) -> torch.Tensor:
        x = self.uniform(generator, n, -0.6, -0.4)
        return torch.cat([x, torch.zeros_like(x)], dim=1)

    def dynamics(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x, v = state[:, 0], state[:, 1]
        force = action[:, 0].clamp(-1.0, 1.0)
        v = (v + force * self.power - 0.0025 * torch.cos(3 * x)).clamp(
            -self.max_speed, self.max_speed
        )
        x = (x + v).clamp(self.min_position, self.max_position)
        v = torch.where((x == self.min_position) & (v < 0), torch.zeros_like(v), v)
        out = self.pack([x, v])
        if self.float32_state and out.dtype != torch.float32:
            out = out.to(torch.float32).to(out.dtype)
        return out

    def _at_goal(self, next_state: torch.Tensor) -> torch.Tensor:
        return (next_state[:, 0] >= self.goal_position) & (next_state[:, 1] >= self.goal_velocity)

    def terminated(self, next_state: torch.Tensor) -> torch.Tensor:
        return self._at_goal(next_state)

    def reward(
        self, state: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        bonus = self._at_goal(next_state).to(action.dtype) * 100.0
        ctrl = -0.1 * action[:, 0] ** 2
        return bonus + ctrl, {"goal_bonus": bonus, "ctrl_cost": ctrl}

    def observation(self, state: torch.Tensor) -> torch.Tensor:
        return state.contiguous()
