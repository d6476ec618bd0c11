"""dm_control ``hopper`` stand and hop."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.dmc.base import (
    DmcTask,
    object_id,
    sensor_columns,
)
from rlwb.envs.dmc.rewards import tolerance
from rlwb.envs.mujoco.base import PhysicsView

STAND_HEIGHT = 0.6
HOP_SPEED = 2.0


@dataclass
class HopperStand(DmcTask):
    """Observation ``position`` (qpos[1:]), ``velocity`` and ``touch`` (log1p of the toe
    and heel touch sensors); reward ``standing * small_control`` (stand) or
    ``standing * hopping`` (hop), standing from torso-over-foot height (``xipos``)."""

    xml_name: ClassVar[str] = "hopper.xml"
    domain: ClassVar[str] = "hopper"
    task_name: ClassVar[str] = "stand"
    time_limit: ClassVar[float] = 20.0
    control_timestep: ClassVar[float | None] = 0.02
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "xipos", "sensordata")
    hopping: ClassVar[bool] = False

    def bind(self, model) -> None:  # noqa: ANN001
        self._torso = object_id(model, "body", "torso")
        self._foot = object_id(model, "body", "foot")
        (self._speed,) = sensor_columns(model, "torso_subtreelinvel")[:1]
        self._touch = sensor_columns(model, "touch_toe", "touch_heel")

    def observation_parts(self, view: PhysicsView) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict(
            position=view["qpos"][:, 1:].clone(),
            velocity=view["qvel"].clone(),
            touch=torch.log1p(view["sensordata"][:, self._touch]),
        )

    def dm_reward(self, view: PhysicsView, action: torch.Tensor) -> torch.Tensor:
        height = view["xipos"][:, self._torso, 2] - view["xipos"][:, self._foot, 2]
        standing = tolerance(height, (STAND_HEIGHT, 2))
        if self.hopping:
            hopping = tolerance(
                view["sensordata"][:, self._speed], bounds=(HOP_SPEED, float("inf")),
                margin=HOP_SPEED / 2, value_at_margin=0.5, sigmoid="linear",
            )  # fmt: skip
            return standing * hopping
        small_control = tolerance(action, margin=1, value_at_margin=0, sigmoid="quadratic")
        return standing * (small_control.mean(dim=1) + 4) / 5


@dataclass
class HopperHop(HopperStand):
    task_name: ClassVar[str] = "hop"
    hopping: ClassVar[bool] = True
