"""dm_control ``dog`` stand, walk, trot and run."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from rlwb.envs.dmc.base import (
    XMAT,
    DmcTask,
    index_tensor,
    object_id,
    randn,
    row_dot_frame,
    row_reduce,
    sensor_columns,
    take,
    uniform,
)
from rlwb.envs.dmc.rewards import tolerance
from rlwb.envs.mujoco.base import PhysicsView

MIN_UPRIGHT_COSINE = float(np.cos(np.deg2rad(30)))  # dm_control's, computed the same way
STAND_HEIGHT_FRACTION = 0.9
DEFAULT_TIME_LIMIT = 15.0
Z_AXES = index_tensor([XMAT["zx"], XMAT["zy"], XMAT["zz"]])


@dataclass
class DogStand(DmcTask):
    """Observation ``joint_angles`` and ``joint_velocites`` (dm_control's spelling; hinge
    qpos/qvel), ``torso_pelvis_height``, ``z_projection`` (skull, torso and pelvis ``xmat``
    z rows), ``torso_com_velocity`` (the torso subtree's linear velocity in the torso
    frame), ``inertial_sensors``, ``foot_forces``, ``touch_sensors`` and ``actuator_state``
    (act); reward the product of torso and pelvis height, three upright and a paw-load
    factor, times a forward-speed factor for walk, trot and run.

    The model is dm_control's ``get_model_and_assets(floor_size)`` (dog.xml with the ball,
    target, walls and their cameras removed, the meshes from ``dog_assets``; floor 15 m
    for stand and walk, ``15 * speed`` for trot and run). Reset: a uniform heading, root
    velocities x, y and yaw rate ``2 N(0, 1)``, actuator states uniform in their control
    range (the fourth reset output; the reset observation is computed with actuation
    disabled, as dm_control's)."""

    xml_name: ClassVar[str] = "dog.xml"
    domain: ClassVar[str] = "dog"
    task_name: ClassVar[str] = "stand"
    time_limit: ClassVar[float] = DEFAULT_TIME_LIMIT
    control_timestep: ClassVar[float | None] = 0.015
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "act", "xpos", "xmat", "sensordata")
    move_speed: ClassVar[float] = 0.0
    floor_speed: ClassVar[float] = 1.0  # stand uses walk's floor

    def load_model(self, path: str):  # noqa: ANN201 - mujoco.MjModel
        import mujoco
        from dm_control.suite import dog

        xml, assets = dog.get_model_and_assets(floor_size=self.floor_speed * DEFAULT_TIME_LIMIT)
        return mujoco.MjModel.from_xml_string(xml, assets)

    def bind(self, model) -> None:  # noqa: ANN001
        import mujoco

        hinges = np.flatnonzero(model.jnt_type == int(mujoco.mjtJoint.mjJNT_HINGE))
        self._hinge_q = index_tensor(model.jnt_qposadr[hinges])
        self._hinge_v = index_tensor(model.jnt_dofadr[hinges])
        heights = [object_id(model, "body", b) for b in ("torso", "pelvis")]
        self._height_bodies = index_tensor(heights)
        self._frames = index_tensor(
            object_id(model, "body", b) for b in ("skull", "torso", "pelvis")
        )
        self._torso = heights[0]
        self._com_velocity = index_tensor(sensor_columns(model, "torso_linvel"))
        self._inertial = index_tensor(sensor_columns(model, "accelerometer", "velocimeter", "gyro"))
        self._feet = index_tensor(sensor_columns(model, "foot_L", "foot_R", "hand_L", "hand_R"))
        self._touch = index_tensor(sensor_columns(model, "palm_L", "palm_R", "sole_L", "sole_R"))
        self._root = int(model.jnt_qposadr[object_id(model, "joint", "root")])
        self._ctrl_range = torch.from_numpy(model.actuator_ctrlrange.copy())
        # stand height and body weight, from the rest pose as dm_control's reset reads them
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        self._stand_height = data.xpos[heights, 2] * STAND_HEIGHT_FRACTION
        mass = model.body_subtreemass[self._torso]
        self._body_weight = float(-model.opt.gravity[2] * mass)

    def _torso_com_velocity(self, view: PhysicsView) -> torch.Tensor:
        return row_dot_frame(
            take(view["sensordata"], self._com_velocity), view["xmat"][:, self._torso]
        )

    def observation_parts(self, view: PhysicsView) -> OrderedDict[str, torch.Tensor]:
        s = view["sensordata"]
        return OrderedDict(
            joint_angles=take(view["qpos"], self._hinge_q),
            joint_velocites=take(view["qvel"], self._hinge_v),
            torso_pelvis_height=take(view["xpos"][:, :, 2], self._height_bodies),
            z_projection=take(take(view["xmat"], self._frames), Z_AXES, dim=2).flatten(1),
            torso_com_velocity=self._torso_com_velocity(view),
            inertial_sensors=take(s, self._inertial),
            foot_forces=take(s, self._feet),
            touch_sensors=take(s, self._touch),
            actuator_state=view["act"].clone(),
        )

    def reward_factors(self, view: PhysicsView) -> list[torch.Tensor]:
        """dm_control's ``get_reward_factors``, each ``[B, k]``, in its order."""
        heights = take(view["xpos"][:, :, 2], self._height_bodies)
        standing = [
            tolerance(heights[:, i : i + 1], bounds=(h, float("inf")), margin=h)
            for i, h in enumerate(self._stand_height.tolist())
        ]
        upright = take(view["xmat"][:, :, XMAT["zz"]], self._frames)
        upright = tolerance(
            upright, bounds=(MIN_UPRIGHT_COSINE, float("inf")),
            sigmoid="linear", margin=MIN_UPRIGHT_COSINE + 1, value_at_margin=0,
        )  # fmt: skip
        load = row_reduce(take(view["sensordata"], self._touch), "sum")
        touch = tolerance(
            load[:, None], bounds=(self._body_weight, float("inf")), margin=self._body_weight,
            sigmoid="linear", value_at_margin=0.9,
        )  # fmt: skip
        return [*standing, upright, touch]

    def dm_reward(self, view: PhysicsView, action: torch.Tensor) -> torch.Tensor:
        return row_reduce(torch.cat(self.reward_factors(view), dim=1), "prod")

    def initialize_episode(
        self, qpos: torch.Tensor, qvel: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        n, r = qpos.shape[0], self._root
        azimuth = uniform(generator, n, 0.0, 2 * math.pi)
        qpos[:, r + 3] = torch.cos(azimuth / 2)
        qpos[:, r + 4 : r + 6] = 0.0
        qpos[:, r + 6] = torch.sin(azimuth / 2)
        qvel[:, [0, 1, 5]] = 2 * randn(generator, n, 3)
        low, high = self._ctrl_range[:, 0], self._ctrl_range[:, 1]
        act = uniform(generator, n, low, high)
        return qpos, qvel, torch.zeros(n, 0, dtype=torch.float64), act


@dataclass
class DogWalk(DogStand):
    """Stand's factors times ``(4 * forward + 1) / 5``: the torso-frame forward speed
    within ``[speed, 2 * speed]`` (linear margin ``max(1, speed)``)."""

    task_name: ClassVar[str] = "walk"
    move_speed: ClassVar[float] = 1.0
    floor_speed: ClassVar[float] = 1.0

    def reward_factors(self, view: PhysicsView) -> list[torch.Tensor]:
        forward = tolerance(
            self._torso_com_velocity(view)[:, :1], bounds=(self.move_speed, 2 * self.move_speed),
            margin=max(1.0, self.move_speed), value_at_margin=0, sigmoid="linear",
        )  # fmt: skip
        return [*super().reward_factors(view), (4 * forward + 1) / 5]


@dataclass
class DogTrot(DogWalk):
    task_name: ClassVar[str] = "trot"
    move_speed: ClassVar[float] = 3.0
    floor_speed: ClassVar[float] = 3.0


@dataclass
class DogRun(DogWalk):
    task_name: ClassVar[str] = "run"
    move_speed: ClassVar[float] = 9.0
    floor_speed: ClassVar[float] = 9.0
