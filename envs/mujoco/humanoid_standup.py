"""HumanoidStandup-v5: Gymnasium's get-up task, reproduced from the physics state in torch.

Matches ``gymnasium/envs/mujoco/humanoidstandup_v5.py`` (Gymnasium 1.x): the Humanoid-v5
observation layout; reward ``qpos[2] / opt.timestep`` (the physics timestep, not the env
``dt``, as Gymnasium does) - control cost on ``ctrl`` - clipped impact cost + 1; never
terminates; reset noise uniform on ``qpos`` and ``qvel``.

Like Gymnasium 1.x, ``uph_cost_weight`` is accepted but not applied (Gymnasium stores it and
never uses it); honouring it would break parity with the ``gym`` backend for the same
arguments. Gymnasium's ``tendon_length``/``tendon_velocity`` info arrays are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.mujoco.arrays import ops
from rlwb.envs.mujoco.base import PhysicsView
from rlwb.envs.mujoco.humanoid import HumanoidObservation

STANDUP_FIELDS = ("qpos", "qvel", "cinert", "cvel", "qfrc_actuator", "cfrc_ext", "ctrl")


@dataclass
class HumanoidStandup(HumanoidObservation):
    """HumanoidStandup-v5 task; fields are ``HumanoidStandupEnv``'s arguments and defaults."""

    xml_file: str = "humanoidstandup.xml"
    frame_skip: int = 5
    uph_cost_weight: float = 1.0
    ctrl_cost_weight: float = 0.1
    impact_cost_weight: float = 0.5e-6
    impact_cost_range: tuple[float, float] = (-math.inf, 10.0)

    gym_id: ClassVar[str] = "HumanoidStandup-v5"
    max_episode_steps: ClassVar[int] = 1000
    fields: ClassVar[tuple[str, ...]] = STANDUP_FIELDS
    pre_fields: ClassVar[tuple[str, ...]] = ()

    def reward(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        qpos = post["qpos"]
        uph = qpos[:, 2] / self.const("timestep", qpos)
        ctrl, cfrc_ext = post["ctrl"], post["cfrc_ext"]
        ctrl_cost = self.ctrl_cost_weight * (ctrl * ctrl).sum(1)
        low, high = self.impact_cost_range
        impact = self.impact_cost_weight * (cfrc_ext * cfrc_ext).sum((1, 2))
        impact_cost = ops(impact).clip(impact, low, high)
        reward = uph - ctrl_cost - impact_cost + 1.0
        info = {
            "x_position": qpos[:, 0],
            "y_position": qpos[:, 1],
            "z_distance_from_origin": qpos[:, 2] - self.const("init_qpos", qpos)[2],
            "reward_linup": uph,
            "reward_quadctrl": -ctrl_cost,
            "reward_impact": -impact_cost,
        }
        return reward, info
