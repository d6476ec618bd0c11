"""dm_control ``ball_in_cup`` catch."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.dmc.base import DmcTask, object_id, uniform
from rlwb.envs.mujoco.base import PhysicsView


@dataclass
class BallInCupCatch(DmcTask):
    """Observation ``position`` (qpos) and ``velocity`` (qvel); sparse reward 1 while the
    ball is inside the cup's target box (x and z). Reset: ball x ``U[-.2, .2]``, z
    ``U[.2, .5]``, redrawn while anything touches (batched rejection loop)."""

    xml_name: ClassVar[str] = "ball_in_cup.xml"
    domain: ClassVar[str] = "ball_in_cup"
    task_name: ClassVar[str] = "catch"
    time_limit: ClassVar[float] = 20.0
    control_timestep: ClassVar[float | None] = 0.02
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "xpos", "site_xpos")

    def bind(self, model) -> None:  # noqa: ANN001
        self._ball = object_id(model, "body", "ball")
        self._target = object_id(model, "site", "target")
        ball_size = float(model.geom_size[object_id(model, "geom", "ball"), 0])
        self._inside = torch.tensor(model.site_size[self._target, [0, 2]] - ball_size)
        self._ball_xz = [
            int(model.jnt_qposadr[object_id(model, "joint", j)]) for j in ("ball_x", "ball_z")
        ]

    def observation_parts(self, view: PhysicsView) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict(position=view["qpos"].clone(), velocity=view["qvel"].clone())

    def dm_reward(self, view: PhysicsView, action: torch.Tensor) -> torch.Tensor:
        gap = view["site_xpos"][:, self._target, [0, 2]] - view["xpos"][:, self._ball, [0, 2]]
        inside = gap.abs() < self._inside.to(gap.device)
        return inside.all(dim=1).to(torch.float64)

    def initialize_episode(
        self, qpos: torch.Tensor, qvel: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        def draw(rows: torch.Tensor) -> torch.Tensor:
            rows[:, self._ball_xz] = uniform(generator, rows.shape[0], [-0.2, 0.2], [0.2, 0.5])
            return rows

        return self.sample_contact_free(qpos, draw), qvel
