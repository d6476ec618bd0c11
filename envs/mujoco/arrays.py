"""Task math written once, run on numpy arrays or torch tensors.

The ``mujoco`` backend evaluates a task on numpy arrays (a step of a few members costs
about 1 us per numpy op against 2-4 us per torch op, which made the task's math as costly
as the physics of one member); the ``warp`` backend and the torch callers evaluate the same
code on torch tensors (GPU, autograd). Arithmetic, comparisons, ``&``/``|``/``~``,
indexing and ``.sum``/``.all``/``.any`` are spelled alike in both libraries; the few
operations that are not go through :func:`ops`, which picks the library of its argument::

    xp = ops(view["qpos"])
    obs = xp.cat([view["qpos"][:, 1:], xp.clip(view["qvel"], -10, 10)])

A task that is written this way sets ``MujocoTask.numpy_math = True``. Elementwise results
agree bit for bit between the two libraries; reductions and transcendental functions may
differ in the last bit (numpy and torch sum in other orders), and the numpy spelling is
the one Gymnasium uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class NumpyOps:
    """The numpy spelling (float64 arrays from the ``mujoco`` backend's buffers)."""

    @staticmethod
    def cat(parts: list[Any], axis: int = 1) -> np.ndarray:
        return np.concatenate(parts, axis=axis)

    @staticmethod
    def clip(x: np.ndarray, low: float, high: float) -> np.ndarray:
        return np.minimum(np.maximum(x, low), high)

    @staticmethod
    def as_float64(x: Any) -> np.ndarray:
        return np.asarray(x).astype(np.float64, copy=False)

    @staticmethod
    def sum(x: np.ndarray, axis: int | tuple[int, ...]) -> np.ndarray:
        return np.add.reduce(x, axis)  # x.sum(axis) without numpy's Python wrapper

    @staticmethod
    def all(x: np.ndarray, axis: int) -> np.ndarray:
        return np.logical_and.reduce(x, axis)

    @staticmethod
    def cast_like(x: np.ndarray, like: np.ndarray) -> np.ndarray:
        return x.astype(like.dtype)

    @staticmethod
    def false_rows(x: np.ndarray) -> np.ndarray:
        """``[B]`` all-False mask for the rows of ``x``."""
        return np.zeros(x.shape[0], dtype=bool)

    @staticmethod
    def zeros_like(x: np.ndarray) -> np.ndarray:
        return np.zeros_like(x)

    @staticmethod
    def isfinite(x: np.ndarray) -> np.ndarray:
        return np.isfinite(x)

    @staticmethod
    def sin(x: np.ndarray) -> np.ndarray:
        return np.sin(x)

    @staticmethod
    def cos(x: np.ndarray) -> np.ndarray:
        return np.cos(x)

    @staticmethod
    def norm(x: np.ndarray, axis: int = -1) -> np.ndarray:
        # what np.linalg.norm(x, axis=axis) computes for real x (bit for bit), without
        # its ~3 us of argument handling
        return np.sqrt(np.add.reduce(x * x, axis))

    @staticmethod
    def flatten(x: np.ndarray) -> np.ndarray:
        """``[B, ...] -> [B, -1]``."""
        return x.reshape(x.shape[0], -1)

    @staticmethod
    def tile_rows(x: np.ndarray, n: int) -> np.ndarray:
        """``[D] -> [n, D]``, a new array."""
        return np.repeat(x[None], n, 0)


class TorchOps:
    """The torch spelling (any device; constants are moved next to their operand)."""

    @staticmethod
    def cat(parts: list[Any], axis: int = 1) -> torch.Tensor:
        return torch.cat(parts, dim=axis)

    @staticmethod
    def clip(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
        return x.clamp(low, high)

    @staticmethod
    def as_float64(x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float64)

    @staticmethod
    def sum(x: torch.Tensor, axis: int | tuple[int, ...]) -> torch.Tensor:
        return x.sum(axis)

    @staticmethod
    def all(x: torch.Tensor, axis: int) -> torch.Tensor:
        return x.all(axis)

    @staticmethod
    def cast_like(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return x.to(like.dtype)

    @staticmethod
    def false_rows(x: torch.Tensor) -> torch.Tensor:
        """``[B]`` all-False mask for the rows of ``x``."""
        return torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)

    @staticmethod
    def zeros_like(x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    @staticmethod
    def isfinite(x: torch.Tensor) -> torch.Tensor:
        return torch.isfinite(x)

    @staticmethod
    def sin(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)

    @staticmethod
    def cos(x: torch.Tensor) -> torch.Tensor:
        return torch.cos(x)

    @staticmethod
    def norm(x: torch.Tensor, axis: int = -1) -> torch.Tensor:
        return torch.linalg.vector_norm(x, dim=axis)

    @staticmethod
    def flatten(x: torch.Tensor) -> torch.Tensor:
        """``[B, ...] -> [B, -1]``."""
        return x.flatten(1)

    @staticmethod
    def tile_rows(x: torch.Tensor, n: int) -> torch.Tensor:
        """``[D] -> [n, D]``, a new tensor."""
        return x.expand(n, -1).clone()


def ops(x: Any) -> type[NumpyOps] | type[TorchOps]:
    """The spelling for ``x``'s library: numpy arrays get :class:`NumpyOps`, anything
    else (torch tensors) :class:`TorchOps`."""
    return NumpyOps if isinstance(x, np.ndarray) else TorchOps
