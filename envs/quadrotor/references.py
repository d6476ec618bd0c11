"""Tracking references for the quadrotor: position, velocity and acceleration at time ``t``.

* ``circle``: radius ``R`` around ``center`` in the horizontal plane, period ``T``, starting
  at ``center + (R, 0, 0)``.
* ``figure8``: the lemniscate of Gerono ``(R sin(w t), (R / 2) sin(2 w t))``, ``w = 2 pi / T``.
* ``step``: hold ``center`` until ``step_time``, then ``center + step`` (zero velocity and
  acceleration: a set-point change, as in the step-response tests of tracking controllers).

All are analytic so a planner evaluates the reference over its horizon exactly.
"""

from __future__ import annotations

import math

import torch

KINDS = ("circle", "figure8", "step")


def reference(
    kind: str,
    t: torch.Tensor,
    center: torch.Tensor,
    radius: float,
    period: float,
    step: torch.Tensor,
    step_time: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(p, v, a)`` of the reference, each ``[..., 3]`` for times ``t[...]``."""
    w = 2 * math.pi / period
    zero = torch.zeros_like(t)
    if kind == "circle":
        c, s = torch.cos(w * t), torch.sin(w * t)
        p = torch.stack([radius * c, radius * s, zero], -1)
        v = torch.stack([-radius * w * s, radius * w * c, zero], -1)
        a = torch.stack([-radius * w * w * c, -radius * w * w * s, zero], -1)
    elif kind == "figure8":
        s1, c1 = torch.sin(w * t), torch.cos(w * t)
        s2, c2 = torch.sin(2 * w * t), torch.cos(2 * w * t)
        p = torch.stack([radius * s1, radius / 2 * s2, zero], -1)
        v = torch.stack([radius * w * c1, radius * w * c2, zero], -1)
        a = torch.stack([-radius * w * w * s1, -2 * radius * w * w * s2, zero], -1)
    elif kind == "step":
        after = (t >= step_time).to(t.dtype)[..., None]
        p = after * step + torch.zeros_like(t)[..., None]
        v = torch.zeros_like(p)
        a = torch.zeros_like(p)
    else:
        raise ValueError(f"unknown reference {kind!r}")
    return p + center, v, a
