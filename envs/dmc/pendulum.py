"""dm_control ``pendulum`` swingup."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.dmc.base import XMAT, DmcTask, object_id, uniform
from rlwb.envs.dmc.rewards import tolerance
from rlwb.envs.mujoco.base import PhysicsView

COSINE_BOUND = math.cos(math.radians(8))  # upright within 8 degrees


@dataclass
class PendulumSwingup(DmcTask):
    """Observation ``orientation`` (pole ``xmat`` zz, xz) and ``velocity`` (hinge qvel);
    reward 1 while the pole is within 8 degrees of upright (``tolerance`` with no margin)."""

    xml_name: ClassVar[str] = "pendulum.xml"
    domain: ClassVar[str] = "pendulum"
    task_name: ClassVar[str] = "swingup"
    time_limit: ClassVar[float] = 20.0
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "xmat")

    def bind(self, model) -> None:  # noqa: ANN001
        self._pole = object_id(model, "body", "pole")

    def observation_parts(self, view: PhysicsView) -> OrderedDict[str, torch.Tensor]:
        pole = view["xmat"][:, self._pole]
        return OrderedDict(
            orientation=pole[:, [XMAT["zz"], XMAT["xz"]]], velocity=view["qvel"][:, :1].clone()
        )

    def dm_reward(self, view: PhysicsView, action: torch.Tensor) -> torch.Tensor:
        return tolerance(view["xmat"][:, self._pole, XMAT["zz"]], (COSINE_BOUND, 1))

    def initialize_episode(
        self, qpos: torch.Tensor, qvel: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        qpos[:, 0] = uniform(generator, qpos.shape[0], -math.pi, math.pi)
        return qpos, qvel
