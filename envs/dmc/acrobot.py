"""dm_control ``acrobot`` swingup (smooth reward)."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.dmc.base import XMAT, DmcTask, object_id, uniform
from rlwb.envs.dmc.rewards import tolerance
from rlwb.envs.mujoco.base import PhysicsView


@dataclass
class AcrobotSwingup(DmcTask):
    """Observation ``orientations`` (both arms' ``xmat`` xz then zz) and ``velocity``;
    reward ``tolerance(|tip - target|, (0, target radius), margin=1)``."""

    xml_name: ClassVar[str] = "acrobot.xml"
    domain: ClassVar[str] = "acrobot"
    task_name: ClassVar[str] = "swingup"
    time_limit: ClassVar[float] = 10.0
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "xmat", "site_xpos")

    def bind(self, model) -> None:  # noqa: ANN001
        self._arms = [object_id(model, "body", b) for b in ("upper_arm", "lower_arm")]
        self._target = object_id(model, "site", "target")
        self._tip = object_id(model, "site", "tip")
        self._radius = float(model.site_size[self._target, 0])
        self._joints = [
            int(model.jnt_qposadr[object_id(model, "joint", j)]) for j in ("shoulder", "elbow")
        ]

    def observation_parts(self, view: PhysicsView) -> OrderedDict[str, torch.Tensor]:
        arms = view["xmat"][:, self._arms]
        orientations = torch.cat([arms[:, :, XMAT["xz"]], arms[:, :, XMAT["zz"]]], dim=1)
        return OrderedDict(orientations=orientations, velocity=view["qvel"].clone())

    def dm_reward(self, view: PhysicsView, action: torch.Tensor) -> torch.Tensor:
        sites = view["site_xpos"]
        distance = torch.linalg.vector_norm(sites[:, self._target] - sites[:, self._tip], dim=1)
        return tolerance(distance, bounds=(0, self._radius), margin=1)

    def initialize_episode(
        self, qpos: torch.Tensor, qvel: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        qpos[:, self._joints] = uniform(generator, qpos.shape[0], [-math.pi] * 2, [math.pi] * 2)
        return qpos, qvel
