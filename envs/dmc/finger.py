"""dm_control ``finger`` spin."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.dmc.base import (
    DmcTask,
    object_id,
    randomize_limited_and_rotational_joints,
    sensor_columns,
)
from rlwb.envs.mujoco.base import PhysicsView

SPIN_VELOCITY = 15.0  # rad/s; reward 1 while the hinge turns faster than this (negative way)


@dataclass
class FingerSpin(DmcTask):
    """Observation ``position`` (proximal, distal joint sensors, tip x/z relative to the
    spinner), ``velocity`` (three joint-velocity sensors) and ``touch`` (log1p of two touch
    sensors); sparse reward ``hinge velocity <= -15``.

    dm_control's Spin sets the hinge damping to 0.03 at every reset (a constant, so it is
    set once on the engine's model here) and redraws joint angles until nothing touches
    (batched rejection loop on the task's CPU ``MjData``)."""

    xml_name: ClassVar[str] = "finger.xml"
    domain: ClassVar[str] = "finger"
    task_name: ClassVar[str] = "spin"
    time_limit: ClassVar[float] = 20.0
    control_timestep: ClassVar[float | None] = 0.02
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "sensordata")

    def bind(self, model) -> None:  # noqa: ANN001
        model.dof_damping[int(model.jnt_dofadr[object_id(model, "joint", "hinge")])] = 0.03
        self._joints = sensor_columns(model, "proximal", "distal")
        tip, spinner = sensor_columns(model, "tip"), sensor_columns(model, "spinner")
        self._tip, self._spinner = [tip[0], tip[2]], [spinner[0], spinner[2]]
        self._velocity = sensor_columns(
            model, "proximal_velocity", "distal_velocity", "hinge_velocity"
        )
        self._hinge_velocity = sensor_columns(model, "hinge_velocity")[0]
        self._touch = sensor_columns(model, "touchtop", "touchbottom")

    def observation_parts(self, view: PhysicsView) -> OrderedDict[str, torch.Tensor]:
        s = view["sensordata"]
        tip = s[:, self._tip] - s[:, self._spinner]
        return OrderedDict(
            position=torch.cat([s[:, self._joints], tip], dim=1),
            velocity=s[:, self._velocity],
            touch=torch.log1p(s[:, self._touch]),
        )

    def dm_reward(self, view: PhysicsView, action: torch.Tensor) -> torch.Tensor:
        return (view["sensordata"][:, self._hinge_velocity] <= -SPIN_VELOCITY).to(torch.float64)

    def initialize_episode(
        self, qpos: torch.Tensor, qvel: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        def draw(rows: torch.Tensor) -> torch.Tensor:
            return randomize_limited_and_rotational_joints(self.mj_model, rows, generator)

        return self.sample_contact_free(qpos, draw), qvel
