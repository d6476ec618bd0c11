"""dm_control ``cartpole`` balance and swingup, smooth and sparse rewards."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.dmc.base import XMAT, DmcTask, randn, uniform
from rlwb.envs.dmc.rewards import tolerance
from rlwb.envs.mujoco.base import PhysicsView


@dataclass
class CartpoleBalance(DmcTask):
    """Observation ``position`` (cart x, pole ``xmat`` zz and xz) and ``velocity`` (qvel);
    reward ``upright * small_control * small_velocity * centered``."""

    xml_name: ClassVar[str] = "cartpole.xml"
    domain: ClassVar[str] = "cartpole"
    task_name: ClassVar[str] = "balance"
    time_limit: ClassVar[float] = 10.0
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "xmat")
    swing_up: ClassVar[bool] = False
    sparse: ClassVar[bool] = False

    def observation_parts(self, view: PhysicsView) -> OrderedDict[str, torch.Tensor]:
        pole = view["xmat"][:, 2:]
        position = torch.cat(
            [view["qpos"][:, :1], pole[:, :, [XMAT["zz"], XMAT["xz"]]].flatten(1)], dim=1
        )
        return OrderedDict(position=position, velocity=view["qvel"].clone())

    def dm_reward(self, view: PhysicsView, action: torch.Tensor) -> torch.Tensor:
        if self.sparse:  # 1 while the cart is within +-0.25 and every pole within ~5.7 deg
            cart_in_bounds = tolerance(view["qpos"][:, 0], (-0.25, 0.25))
            angle_in_bounds = tolerance(view["xmat"][:, 2:, XMAT["zz"]], (0.995, 1.0))
            return cart_in_bounds * angle_in_bounds.prod(dim=1)
        upright = (view["xmat"][:, 2:, XMAT["zz"]] + 1) / 2
        centered = (1 + tolerance(view["qpos"][:, 0], margin=2)) / 2
        small_control = tolerance(action, margin=1, value_at_margin=0, sigmoid="quadratic")
        small_control = (4 + small_control[:, 0]) / 5
        # amin, not min(dim=1): the latter is pathologically slow on these strided views
        small_velocity = tolerance(view["qvel"][:, 1:], margin=5).amin(dim=1)
        small_velocity = (1 + small_velocity) / 2
        return upright.mean(dim=1) * small_control * small_velocity * centered

    def initialize_episode(
        self, qpos: torch.Tensor, qvel: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n, nv = qpos.shape[0], qvel.shape[1]
        if self.swing_up:
            qpos[:, 0] = 0.01 * randn(generator, n)
            qpos[:, 1] = math.pi + 0.01 * randn(generator, n)
            qpos[:, 2:] = 0.1 * randn(generator, n, nv - 2)
        else:
            qpos[:, 0] = uniform(generator, n, -0.1, 0.1)
            qpos[:, 1:] = uniform(generator, n, [-0.034] * (nv - 1), [0.034] * (nv - 1))
        qvel = 0.01 * randn(generator, n, nv)
        return qpos, qvel


@dataclass
class CartpoleSwingup(CartpoleBalance):
    """Swing-up: the pole starts hanging down (``pi + 0.01 N(0, 1)``), cart near 0."""

    task_name: ClassVar[str] = "swingup"
    swing_up: ClassVar[bool] = True


@dataclass
class CartpoleBalanceSparse(CartpoleBalance):
    """Balance with the sparse reward (cart in ``[-.25, .25]``, pole cosine ``>= .995``)."""

    task_name: ClassVar[str] = "balance_sparse"
    sparse: ClassVar[bool] = True


@dataclass
class CartpoleSwingupSparse(CartpoleSwingup):
    """Swing-up with the sparse reward of :class:`CartpoleBalanceSparse`."""

    task_name: ClassVar[str] = "swingup_sparse"
    sparse: ClassVar[bool] = True
