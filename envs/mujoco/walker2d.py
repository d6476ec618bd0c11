"""Walker2d-v5 (Gymnasium ``walker2d_v5.py``): walk forward without falling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.mujoco.base import PhysicsView, in_open_range
from rlwb.envs.mujoco.hopper import Hopper


@dataclass
class Walker2d(Hopper):
    """Like :class:`Hopper` (same reward, reset and clipped observation) but healthy means
    only torso height and angle in range; v5 uses ``walker2d_v5.xml`` (both feet with the
    same friction)."""

    xml_file: str = "walker2d_v5.xml"
    frame_skip: int = 4
    healthy_z_range: tuple[float, float] = (0.8, 2.0)
    healthy_angle_range: tuple[float, float] = (-1.0, 1.0)

    gym_id: ClassVar[str] = "Walker2d-v5"

    @classmethod
    def argument_names(cls) -> list[str]:
        return [n for n in super().argument_names() if n != "healthy_state_range"]

    def is_healthy(self, post: PhysicsView) -> torch.Tensor:
        qpos = post["qpos"]
        healthy_z = in_open_range(qpos[:, 1], self.healthy_z_range)
        return healthy_z & in_open_range(qpos[:, 2], self.healthy_angle_range)
