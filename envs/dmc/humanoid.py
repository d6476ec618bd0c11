"""dm_control ``humanoid`` stand, walk and run."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.dmc.base import (
    XMAT,
    DmcTask,
    index_tensor,
    object_id,
    randomize_limited_and_rotational_joints,
    row_dot_frame,
    row_reduce,
    sensor_columns,
    take,
)
from rlwb.envs.dmc.rewards import tolerance
from rlwb.envs.mujoco.base import PhysicsView

STAND_HEIGHT = 1.4  # head height (m) above which standing is rewarded in full
LIMBS = ("left_hand", "left_foot", "right_hand", "right_foot")  # dm_control's extremities order


@dataclass
class HumanoidStand(DmcTask):
    """Observation ``joint_angles`` (qpos without the free root), ``head_height``,
    ``extremities`` (hands and feet relative to the torso, in its frame),
    ``torso_vertical`` (torso ``xmat`` zx, zy, zz), ``com_velocity`` (the torso subtree's
    linear velocity sensor) and ``velocity`` (qvel); reward ``small_control * standing *
    upright`` times ``dont_move`` (stand) or ``move`` (walk, run).

    Reset: the joint randomiser (free root: only its orientation) redrawn until nothing
    touches (dm_control loops without limit; the batched loop here gives up after 1000)."""

    xml_name: ClassVar[str] = "humanoid.xml"
    domain: ClassVar[str] = "humanoid"
    task_name: ClassVar[str] = "stand"
    time_limit: ClassVar[float] = 25.0
    control_timestep: ClassVar[float | None] = 0.025
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "xpos", "xmat", "sensordata")
    move_speed: ClassVar[float] = 0.0

    def bind(self, model) -> None:  # noqa: ANN001
        self._torso = object_id(model, "body", "torso")
        self._head = object_id(model, "body", "head")
        self._limbs = index_tensor(object_id(model, "body", name) for name in LIMBS)
        self._com_velocity = sensor_columns(model, "torso_subtreelinvel")

    def observation_parts(self, view: PhysicsView) -> OrderedDict[str, torch.Tensor]:
        xpos, n, k = view["xpos"], view["xpos"].shape[0], len(self._limbs)
        offsets = take(xpos, self._limbs) - xpos[:, self._torso, None]  # [B, limbs, 3]
        frames = view["xmat"][:, self._torso, None].expand(n, k, 9)
        extremities = row_dot_frame(offsets.reshape(n * k, 3), frames.reshape(n * k, 9))
        return OrderedDict(
            joint_angles=view["qpos"][:, 7:],
            head_height=xpos[:, self._head, 2:3],
            extremities=extremities.reshape(n, 3 * k),
            torso_vertical=view["xmat"][:, self._torso, [XMAT["zx"], XMAT["zy"], XMAT["zz"]]],
            com_velocity=view["sensordata"][:, self._com_velocity],
            velocity=view["qvel"].clone(),
        )

    def dm_reward(self, view: PhysicsView, action: torch.Tensor) -> torch.Tensor:
        standing = tolerance(
            view["xpos"][:, self._head, 2], bounds=(STAND_HEIGHT, float("inf")),
            margin=STAND_HEIGHT / 4,
        )  # fmt: skip
        upright = tolerance(
            view["xmat"][:, self._torso, XMAT["zz"]], bounds=(0.9, float("inf")),
            sigmoid="linear", margin=1.9, value_at_margin=0,
        )  # fmt: skip
        stand = standing * upright  # dm_control's product order, for bit-identical rewards
        control = tolerance(action, margin=1, value_at_margin=0, sigmoid="quadratic")
        small_control = (4 + row_reduce(control, "mean")) / 5
        horizontal = view["sensordata"][:, self._com_velocity[:2]]
        if self.move_speed == 0:
            dont_move = row_reduce(tolerance(horizontal, margin=2), "mean")
            return small_control * stand * dont_move
        speed = torch.linalg.vector_norm(horizontal, dim=1)
        move = tolerance(
            speed, bounds=(self.move_speed, float("inf")), margin=self.move_speed,
            value_at_margin=0, sigmoid="linear",
        )  # fmt: skip
        return small_control * stand * ((5 * move + 1) / 6)

    def initialize_episode(
        self, qpos: torch.Tensor, qvel: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        def draw(rows: torch.Tensor) -> torch.Tensor:
            return randomize_limited_and_rotational_joints(self.mj_model, rows, generator)

        return self.sample_contact_free(qpos, draw), qvel


@dataclass
class HumanoidWalk(HumanoidStand):
    task_name: ClassVar[str] = "walk"
    move_speed: ClassVar[float] = 1.0


@dataclass
class HumanoidRun(HumanoidStand):
    task_name: ClassVar[str] = "run"
    move_speed: ClassVar[float] = 10.0
