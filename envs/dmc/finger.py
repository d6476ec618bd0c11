"""dm_control ``finger`` spin, turn_easy and turn_hard."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from rlwb.envs.dmc.base import (
    DmcTask,
    object_id,
    randomize_limited_and_rotational_joints,
    sensor_columns,
    uniform,
)
from rlwb.envs.mujoco.base import PhysicsView

SPIN_VELOCITY = 15.0  # rad/s; reward 1 while the hinge turns faster than this (negative way)
EASY_TARGET_SIZE, HARD_TARGET_SIZE = 0.07, 0.03  # radius of the turn tasks' target site


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
        self.bind_sensors(model)

    def bind_sensors(self, model) -> None:  # noqa: ANN001
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
        return self.contact_free_joints(qpos, generator), qvel

    def contact_free_joints(self, qpos: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """dm_control's ``_set_random_joint_angles``: joint randomiser until nothing touches."""

        def draw(rows: torch.Tensor) -> torch.Tensor:
            return randomize_limited_and_rotational_joints(self.mj_model, rows, generator)

        return self.sample_contact_free(qpos, draw)


@dataclass
class FingerTurnEasy(FingerSpin):
    """Observation as :class:`FingerSpin` plus ``target_position`` (target x/z relative to
    the spinner) and ``dist_to_target`` (tip to target surface, negative inside); sparse
    reward ``dist_to_target <= 0``.

    dm_control moves the target site (``model.site_pos``) at every reset to a uniform angle
    on the circle the tip sweeps (a per-episode model change): here its x, z live in two
    ``MjData.userdata`` slots, part of the member's state, and stand in for the ``target``
    sensor (the site sits in the world body, so the sensor reads exactly its position). The
    hinge damping keeps the XML's value (Turn does not change it); the target radius is
    fixed per task as in dm_control's constructor (easy 0.07, hard 0.03)."""

    task_name: ClassVar[str] = "turn_easy"
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "sensordata", "userdata")
    userdata_slots: ClassVar[int] = 2  # the target's x, z
    render_targets = ("site", "target", (0, 2))
    target_radius: ClassVar[float] = EASY_TARGET_SIZE

    def bind(self, model) -> None:  # noqa: ANN001
        import mujoco

        self.bind_sensors(model)
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        hinge = object_id(model, "joint", "hinge")
        self._hinge_xz = (float(data.xanchor[hinge, 0]), float(data.xanchor[hinge, 2]))
        self._sweep_radius = float(model.geom_size[object_id(model, "geom", "cap1")].sum())
        model.site_size[object_id(model, "site", "target"), 0] = self.target_radius

    def observation_parts(self, view: PhysicsView) -> OrderedDict[str, torch.Tensor]:
        parts = super().observation_parts(view)
        s = view["sensordata"]
        target = view["userdata"][:, :2] - s[:, self._spinner]
        to_target = target - parts["position"][:, 2:4]
        distance = torch.linalg.vector_norm(to_target, dim=1, keepdim=True)
        parts["target_position"] = target
        parts["dist_to_target"] = distance - self.target_radius
        return parts

    def dm_reward(self, view: PhysicsView, action: torch.Tensor) -> torch.Tensor:
        distance = self.observation_parts(view)["dist_to_target"][:, 0]
        return (distance <= 0).to(torch.float64)

    def initialize_episode(
        self, qpos: torch.Tensor, qvel: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        angle = uniform(generator, qpos.shape[0], -math.pi, math.pi)
        x = self._hinge_xz[0] + self._sweep_radius * torch.sin(angle)
        z = self._hinge_xz[1] + self._sweep_radius * torch.cos(angle)
        return self.contact_free_joints(qpos, generator), qvel, torch.stack([x, z], dim=1)

    def dm_userdata(self, physics) -> np.ndarray:  # noqa: ANN001
        return np.array(physics.named.model.site_pos["target", ["x", "z"]])


@dataclass
class FingerTurnHard(FingerTurnEasy):
    task_name: ClassVar[str] = "turn_hard"
    target_radius: ClassVar[float] = HARD_TARGET_SIZE
