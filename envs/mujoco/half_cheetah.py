"""HalfCheetah-v5 (Gymnasium ``half_cheetah_v5.py``): run forward, no termination."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.mujoco.base import (
    LocomotionTask,
    PhysicsView,
    control_cost,
    forward_velocity,
    noisy_reset,
)


@dataclass
class HalfCheetah(LocomotionTask):
    """Reward ``forward_reward_weight * x_velocity - ctrl_cost_weight * |a|^2``; reset
    noise uniform on qpos and *normal* on qvel, as Gymnasium's v5."""

    xml_file: str = "half_cheetah.xml"
    frame_skip: int = 5
    forward_reward_weight: float = 1.0
    ctrl_cost_weight: float = 0.1
    reset_noise_scale: float = 0.1
    exclude_current_positions_from_observation: bool = True

    gym_id: ClassVar[str] = "HalfCheetah-v5"

    def reward(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x_velocity = forward_velocity(pre, post, dt)
        forward = self.forward_reward_weight * x_velocity
        ctrl = control_cost(action, self.ctrl_cost_weight)
        info = {
            "x_position": post["qpos"][:, 0],
            "x_velocity": x_velocity,
            "reward_forward": forward,
            "reward_ctrl": -ctrl,
        }
        return forward - ctrl, info

    def reset_state(
        self, init_qpos: torch.Tensor, init_qvel: torch.Tensor, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return noisy_reset(init_qpos, init_qvel, n, generator, self.reset_noise_scale, "normal")

    def reward_from_obs(
        self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reward ``[M]`` and termination ``[M]`` (never) of transitions given as
        observations (model-based planners). The x velocity is the next observation's, where
        :meth:`reward` differences the x position over the step (which the observation
        lacks): an approximation, as PETS' own cheetah reward."""
        x_velocity = next_obs[:, 9 - self._skip()]  # qvel[0], after the positions
        reward = self.forward_reward_weight * x_velocity
        reward = reward - self.ctrl_cost_weight * (action**2).sum(1)
        return reward, torch.zeros_like(reward, dtype=torch.bool)
