"""dm_control ``walker`` stand, walk and run."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.dmc.base import (
    XMAT,
    DmcTask,
    object_id,
    sensor_columns,
)
from rlwb.envs.dmc.rewards import tolerance
from rlwb.envs.mujoco.base import PhysicsView

STAND_HEIGHT = 1.2


@dataclass
class WalkerStand(DmcTask):
    """Observation ``orientations`` (xx, xz of every body's ``xmat`` but the world's),
    ``height`` (torso z) and ``velocity``; reward ``(3 standing + upright) / 4``, times
    ``(5 move + 1) / 6`` for walk and run. Reset: dm_control's joint randomiser."""

    xml_name: ClassVar[str] = "walker.xml"
    domain: ClassVar[str] = "walker"
    task_name: ClassVar[str] = "stand"
    time_limit: ClassVar[float] = 25.0
    control_timestep: ClassVar[float | None] = 0.025
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "xpos", "xmat", "sensordata")
    move_speed: ClassVar[float] = 0.0

    def bind(self, model) -> None:  # noqa: ANN001
        self._torso = object_id(model, "body", "torso")
        (self._speed,) = sensor_columns(model, "torso_subtreelinvel")[:1]

    def observation_parts(self, view: PhysicsView) -> OrderedDict[str, torch.Tensor]:
        orientations = view["xmat"][:, 1:][:, :, [XMAT["xx"], XMAT["xz"]]].flatten(1)
        height = view["xpos"][:, self._torso, 2:3]
        return OrderedDict(orientations=orientations, height=height, velocity=view["qvel"].clone())

    def dm_reward(self, view: PhysicsView, action: torch.Tensor) -> torch.Tensor:
        height = view["xpos"][:, self._torso, 2]
        standing = tolerance(height, bounds=(STAND_HEIGHT, float("inf")), margin=STAND_HEIGHT / 2)
        upright = (1 + view["xmat"][:, self._torso, XMAT["zz"]]) / 2
        stand_reward = (3 * standing + upright) / 4
        if self.move_speed == 0:
            return stand_reward
        move = tolerance(
            view["sensordata"][:, self._speed], bounds=(self.move_speed, float("inf")),
            margin=self.move_speed / 2, value_at_margin=0.5, sigmoid="linear",
        )  # fmt: skip
        return stand_reward * (5 * move + 1) / 6


@dataclass
class WalkerWalk(WalkerStand):
    task_name: ClassVar[str] = "walk"
    move_speed: ClassVar[float] = 1.0


@dataclass
class WalkerRun(WalkerStand):
    task_name: ClassVar[str] = "run"
    move_speed: ClassVar[float] = 8.0
