"""Obstacle fields for the quadrotor: spheres and vertical (infinite) cylinders.

An obstacle row is ``[kind, cx, cy, cz, radius]`` with kind 0 = sphere, 1 = cylinder (its
axis vertical through ``(cx, cy)``, ``cz`` unused). A field is a named preset or a string
``"sphere:x,y,z,r; cylinder:x,y,r"``. The quadrotor is a ball of radius ``body_radius``:
clearance = distance between centre and obstacle surface minus ``body_radius``; a collision
is clearance < 0.

The ``circle`` presets sit on the unit-height circle reference of radius 1.5 m: one pillar
straddles the path (the planner must leave the reference to pass it) and the others stand
just outside the path on the downwind side of the default wind (+x), where a planner that
ignores the wind drifts.
"""

from __future__ import annotations

import torch

from rlwb.errors import ConfigError

SPHERE, CYLINDER = 0.0, 1.0
NO_OBSTACLE_DISTANCE = 100.0  # clearance reported when the field is empty (finite for logs)

PRESETS = {
    "none": "",
    "pillars": "cylinder:1.95,0.0,0.25; cylinder:1.3,1.3,0.2; cylinder:0,-1.5,0.25",
    "mixed": "cylinder:1.95,0.0,0.25; sphere:1.3,1.3,1.0,0.25; sphere:-1.5,0,1.0,0.3",
}


def parse_obstacles(spec: str) -> list[list[float]]:
    """Rows ``[kind, cx, cy, cz, r]`` of a preset name or an obstacle string."""
    text = PRESETS.get(spec, spec)
    rows = []
    for item in filter(None, (s.strip() for s in text.split(";"))):
        kind, _, numbers = item.partition(":")
        try:
            values = [float(x) for x in numbers.split(",")]
        except ValueError:
            raise ConfigError(f"obstacle {item!r}: numbers expected after the colon") from None
        if kind.strip() == "sphere" and len(values) == 4:
            rows.append([SPHERE, *values])
        elif kind.strip() == "cylinder" and len(values) == 3:
            rows.append([CYLINDER, values[0], values[1], 0.0, values[2]])
        else:
            raise ConfigError(
                f"obstacle {item!r} must be 'sphere:x,y,z,r' or 'cylinder:x,y,r' "
                f"(presets: {', '.join(PRESETS)})"
            )
        if rows[-1][4] <= 0:
            raise ConfigError(f"obstacle {item!r} needs a positive radius")
    return rows


def offsets(pos: torch.Tensor, obstacles: torch.Tensor) -> torch.Tensor:
    """``[..., K, 3]`` vector from each obstacle's nearest axis point to ``pos[..., 3]``
    (the z part is zero for cylinders)."""
    diff = pos[..., None, :] - obstacles[:, 1:4]
    keep_z = (obstacles[:, 0] == SPHERE).to(pos.dtype)
    return torch.cat([diff[..., :2], diff[..., 2:3] * keep_z[:, None]], -1)


def clearances(pos: torch.Tensor, obstacles: torch.Tensor, body_radius: float) -> torch.Tensor:
    """``[..., K]`` clearance of a ball of ``body_radius`` at ``pos[..., 3]`` to each obstacle."""
    dist = torch.linalg.vector_norm(offsets(pos, obstacles), dim=-1)
    return dist - obstacles[:, 4] - body_radius


def min_clearance(pos: torch.Tensor, obstacles: torch.Tensor, body_radius: float) -> torch.Tensor:
    """``[...]`` clearance to the nearest obstacle (``NO_OBSTACLE_DISTANCE`` for no field)."""
    if obstacles.shape[0] == 0:
        return torch.full(pos.shape[:-1], NO_OBSTACLE_DISTANCE, dtype=pos.dtype, device=pos.device)
    return clearances(pos, obstacles, body_radius).amin(-1)
