"""Is a sweep's run the run ``rlwb train`` makes? Its final checkpoint against another's:
the agent, engine, random number generators and counters (not the wall time, the resume
history or the creation time, which differ between equal runs)."""

from __future__ import annotations

import pathlib
from typing import Any

import torch

from rlwb import checkpoint as ckpt


def final_state(run: str | pathlib.Path) -> dict[str, Any]:
    """What must be equal in two runs' latest checkpoints."""
    payload = ckpt.load(ckpt.resolve(run))
    counters = {k: v for k, v in payload["counters"].items() if k != "wall_time"}
    return {"agent": payload["agent"], "engine": payload["engine"], "rng": payload["rng"],
            "counters": counters, "obs": payload.get("obs")}  # fmt: skip


def first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """Where two nested states first differ (tensors bit for bit), or None when equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{where}: keys {sorted(a.keys() ^ b.keys())}"
        return next((d for k in a if (d := first_difference(a[k], b[k], f"{where}.{k}"))), None)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return f"{where}: length {len(a)} != {len(b)}"
        pairs = enumerate(zip(a, b, strict=True))
        return next((d for i, (x, y) in pairs if (d := first_difference(x, y, f"{where}[{i}]"))),
                    None)  # fmt: skip
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        same = a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
        return None if same else f"{where}: tensors differ"
    same = a == b or (a != a and b != b)  # NaN equals NaN here
    return None if same else f"{where}: {a!r} != {b!r}"


def runs_differ(run: str | pathlib.Path, reference: str | pathlib.Path) -> str | None:
    """Where ``run``'s final state differs from ``reference``'s, or None when equal."""
    return first_difference(final_state(run), final_state(reference))
