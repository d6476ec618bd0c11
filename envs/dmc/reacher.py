"""dm_control ``reacher`` easy and hard."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from rlwb.envs.dmc.base import DmcTask, object_id, randomize_limited_and_rotational_joints, uniform
from rlwb.envs.dmc.rewards import tolerance
from rlwb.envs.mujoco.base import PhysicsView


@dataclass
class ReacherEasy(DmcTask):
    """Observation ``position`` (qpos), ``to_target`` (target minus finger, x and y) and
    ``velocity``; reward 1 while the finger touches the target (``tolerance(dist, (0,
    target + finger radii))``).

    dm_control moves the target geom (``model.geom_pos``) at every reset: a per-episode
    model change. Here the target's x, y live in two ``MjData.userdata`` slots added to
    the model, part of the member's state (so cloning a member clones its target); the
    target geom does not collide (the model disables contacts) and sits in the world body,
    so its position is the whole effect. The target size is fixed per task, as in
    dm_control's constructor (easy 0.05, hard 0.015)."""

    xml_name: ClassVar[str] = "reacher.xml"
    domain: ClassVar[str] = "reacher"
    task_name: ClassVar[str] = "easy"
    time_limit: ClassVar[float] = 20.0
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "geom_xpos", "userdata")
    userdata_slots: ClassVar[int] = 2  # the target's x, y
    render_targets = ("geom", "target", (0, 1))
    target_size: ClassVar[float] = 0.05

    def bind(self, model) -> None:  # noqa: ANN001
        self._finger = object_id(model, "geom", "finger")
        self._target = object_id(model, "geom", "target")
        model.geom_size[self._target, 0] = self.target_size
        self._radii = self.target_size + float(model.geom_size[self._finger, 0])

    def _to_target(self, view: PhysicsView) -> torch.Tensor:
        return view["userdata"][:, :2] - view["geom_xpos"][:, self._finger, :2]

    def observation_parts(self, view: PhysicsView) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict(
            position=view["qpos"].clone(), to_target=self._to_target(view),
            velocity=view["qvel"].clone(),
        )  # fmt: skip

    def dm_reward(self, view: PhysicsView, action: torch.Tensor) -> torch.Tensor:
        distance = torch.linalg.vector_norm(self._to_target(view), dim=1)
        return tolerance(distance, (0, self._radii))

    def initialize_episode(
        self, qpos: torch.Tensor, qvel: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        qpos = randomize_limited_and_rotational_joints(self.mj_model, qpos, generator)
        n = qpos.shape[0]
        angle = uniform(generator, n, 0.0, 2 * math.pi)
        radius = uniform(generator, n, 0.05, 0.20)
        target = torch.stack([radius * torch.sin(angle), radius * torch.cos(angle)], dim=1)
        return qpos, qvel, target

    def dm_userdata(self, physics) -> np.ndarray:  # noqa: ANN001
        return np.array(physics.named.model.geom_pos["target", ["x", "y"]])


@dataclass
class ReacherHard(ReacherEasy):
    task_name: ClassVar[str] = "hard"
    target_size: ClassVar[float] = 0.015
