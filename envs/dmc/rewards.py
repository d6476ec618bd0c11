"""dm_control's ``rewards.tolerance`` in batched torch.

Same formulas and argument checks as ``dm_control.utils.rewards`` (1.0.50): 1 inside
``bounds``, a sigmoid of the distance to the nearest bound (in units of ``margin``) outside,
equal to ``value_at_margin`` at one margin. Works elementwise on any tensor shape, in the
tensor's dtype and device (the parity tests run it in float64 against the numpy original).
"""

from __future__ import annotations

import math

import torch

DEFAULT_VALUE_AT_MARGIN = 0.1
SIGMOIDS = (
    "gaussian", "hyperbolic", "long_tail", "reciprocal", "cosine", "linear", "quadratic",
    "tanh_squared",
)  # fmt: skip


def _check(sigmoid: str, value_at_1: float) -> None:
    if sigmoid not in SIGMOIDS:
        raise ValueError(f"unknown sigmoid {sigmoid!r}; known: {', '.join(SIGMOIDS)}")
    if sigmoid in ("cosine", "linear", "quadratic"):
        if not 0 <= value_at_1 < 1:
            raise ValueError(f"value_at_1 must be in [0, 1) for {sigmoid!r}, got {value_at_1}")
    elif not 0 < value_at_1 < 1:
        raise ValueError(f"value_at_1 must be in (0, 1) for {sigmoid!r}, got {value_at_1}")


def sigmoid_of(x: torch.Tensor, value_at_1: float, sigmoid: str) -> torch.Tensor:
    """dm_control's ``_sigmoids``: a function of ``x >= 0`` equal to 1 at 0 and
    ``value_at_1`` at 1."""
    _check(sigmoid, value_at_1)
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    if sigmoid == "gaussian":
        scale = math.sqrt(-2 * math.log(value_at_1))
        return torch.exp(-0.5 * (x * scale) ** 2)
    if sigmoid == "hyperbolic":
        scale = math.acosh(1 / value_at_1)
        return 1 / torch.cosh(x * scale)
    if sigmoid == "long_tail":
        scale = math.sqrt(1 / value_at_1 - 1)
        return 1 / ((x * scale) ** 2 + 1)
    if sigmoid == "reciprocal":
        scale = 1 / value_at_1 - 1
        return 1 / (x.abs() * scale + 1)
    if sigmoid == "cosine":
        scaled = x * (math.acos(2 * value_at_1 - 1) / math.pi)
        return torch.where(scaled.abs() < 1, (1 + torch.cos(math.pi * scaled)) / 2, zero)
    if sigmoid == "linear":
        scaled = x * (1 - value_at_1)
        return torch.where(scaled.abs() < 1, 1 - scaled, zero)
    if sigmoid == "quadratic":
        scaled = x * math.sqrt(1 - value_at_1)
        return torch.where(scaled.abs() < 1, 1 - scaled**2, zero)
    scale = math.atanh(math.sqrt(1 - value_at_1))  # tanh_squared
    return 1 - torch.tanh(x * scale) ** 2


def tolerance(
    x: torch.Tensor,
    bounds: tuple[float, float] = (0.0, 0.0),
    margin: float = 0.0,
    sigmoid: str = "gaussian",
    value_at_margin: float = DEFAULT_VALUE_AT_MARGIN,
) -> torch.Tensor:
    """1 where ``lower <= x <= upper``; outside, ``sigmoid`` of the distance to the bounds
    over ``margin`` (0 when ``margin == 0``). Elementwise, like dm_control's."""
    lower, upper = bounds
    if lower > upper:
        raise ValueError(f"lower bound must be <= upper bound, got {bounds}")
    if margin < 0:
        raise ValueError(f"margin must be non-negative, got {margin}")
    in_bounds = (lower <= x) & (x <= upper)
    one = torch.ones((), dtype=x.dtype, device=x.device)
    if margin == 0:
        return torch.where(in_bounds, one, torch.zeros_like(one))
    d = torch.where(x < lower, lower - x, x - upper) / margin
    return torch.where(in_bounds, one, sigmoid_of(d, value_at_margin, sigmoid))
