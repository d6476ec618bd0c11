"""Swimmer-v5 (Gymnasium ``swimmer_v5.py``): swim forward in a viscous fluid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.mujoco.base import (
    LocomotionTask,
    PhysicsView,
    control_cost,
    noisy_reset,
    planar_motion_info,
)


@dataclass
class Swimmer(LocomotionTask):
    """Two root coordinates (x, y) are dropped from the observation; reward uses the x
    velocity of the root; uniform reset noise on qpos and qvel."""

    xml_file: str = "swimmer.xml"
    frame_skip: int = 4
    forward_reward_weight: float = 1.0
    ctrl_cost_weight: float = 1e-4
    reset_noise_scale: float = 0.1
    exclude_current_positions_from_observation: bool = True

    gym_id: ClassVar[str] = "Swimmer-v5"
    skipped_positions: ClassVar[int] = 2

    def reward(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        xy_before, xy_after = pre["qpos"][:, :2], post["qpos"][:, :2]
        velocity = (xy_after - xy_before) / dt
        forward = self.forward_reward_weight * velocity[:, 0]
        ctrl = control_cost(action, self.ctrl_cost_weight)
        info = {
            **planar_motion_info(xy_after, velocity),
            "reward_forward": forward,
            "reward_ctrl": -ctrl,
        }
        return forward - ctrl, info

    def reset_state(
        self, init_qpos: torch.Tensor, init_qvel: torch.Tensor, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return noisy_reset(init_qpos, init_qvel, n, generator, self.reset_noise_scale, "uniform")
