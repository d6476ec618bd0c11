"""dm_control ``fish`` swim."""

from __future__ import annotations

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
    take,
    uniform,
)
from rlwb.envs.dmc.rewards import tolerance
from rlwb.envs.mujoco.base import PhysicsView

JOINTS = ("tail1", "tail_twist", "tail2", "finright_roll", "finright_pitch", "finleft_roll",
          "finleft_pitch")  # fmt: skip
TARGET_LOW, TARGET_HIGH = (-0.4, -0.4, 0.1), (0.4, 0.4, 0.3)  # the target's reset box


@dataclass
class FishSwim(DmcTask):
    """Observation ``joint_angles`` (the seven fin/tail joints), ``upright`` (torso ``xmat``
    zz), ``target`` (mouth to target in the mouth's frame) and ``velocity`` (qvel); reward
    ``(7 * in_target + upright01) / 8``.

    dm_control moves the target geom (``model.geom_pos``) at every reset, uniformly in a box
    (a per-episode model change). Here its x, y, z live in three ``MjData.userdata`` slots,
    part of the member's state; the geom sits in the world body and the model disables
    constraints, so its position is the whole effect. Reset: a uniformly random torso
    orientation (normalised ``N(0, 1)^4``) and the joints ``U[-.2, .2]``."""

    xml_name: ClassVar[str] = "fish.xml"
    domain: ClassVar[str] = "fish"
    task_name: ClassVar[str] = "swim"
    time_limit: ClassVar[float] = 40.0
    control_timestep: ClassVar[float | None] = 0.04
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "xmat", "geom_xpos", "geom_xmat",
                                         "userdata")  # fmt: skip
    userdata_slots: ClassVar[int] = 3  # the target's x, y, z
    render_targets = ("geom", "target", (0, 1, 2))

    def bind(self, model) -> None:  # noqa: ANN001
        self._joints = [int(model.jnt_qposadr[object_id(model, "joint", j)]) for j in JOINTS]
        self._joint_columns = index_tensor(self._joints)
        self._torso = object_id(model, "body", "torso")
        self._mouth = object_id(model, "geom", "mouth")
        self._root = int(model.jnt_qposadr[object_id(model, "joint", "root")])
        target = object_id(model, "geom", "target")
        self._radii = float(model.geom_size[[self._mouth, target], 0].sum())

    def _mouth_to_target(self, view: PhysicsView) -> torch.Tensor:
        offset = view["userdata"][:, :3] - view["geom_xpos"][:, self._mouth]
        return row_dot_frame(offset, view["geom_xmat"][:, self._mouth])

    def observation_parts(self, view: PhysicsView) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict(
            joint_angles=take(view["qpos"], self._joint_columns),
            upright=view["xmat"][:, self._torso, XMAT["zz"]][:, None],
            target=self._mouth_to_target(view),
            velocity=view["qvel"].clone(),
        )

    def dm_reward(self, view: PhysicsView, action: torch.Tensor) -> torch.Tensor:
        distance = torch.linalg.vector_norm(self._mouth_to_target(view), dim=1)
        in_target = tolerance(distance, bounds=(0, self._radii), margin=2 * self._radii)
        is_upright = 0.5 * (view["xmat"][:, self._torso, XMAT["zz"]] + 1)
        return (7 * in_target + is_upright) / 8

    def initialize_episode(
        self, qpos: torch.Tensor, qvel: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n, r = qpos.shape[0], self._root
        quat = randn(generator, n, 4)
        qpos[:, r + 3 : r + 7] = quat / torch.linalg.vector_norm(quat, dim=1, keepdim=True)
        qpos[:, self._joints] = uniform(generator, n, [-0.2] * 7, [0.2] * 7)
        return qpos, qvel, uniform(generator, n, TARGET_LOW, TARGET_HIGH)

    def dm_userdata(self, physics) -> np.ndarray:  # noqa: ANN001
        return np.array(physics.named.model.geom_pos["target"])
