"""Observation statistics for the Deep GA's observation normalisation.

The rule, as in the authors' released MuJoCo code (their GA shares the ES code base's
``RunningStat`` and policy): the statistics are a running sum, sum of squares and count of
observations, started at ``sum = 0``, ``sumsq = count = 0.01``; ``mean = sum / count`` and
``std = sqrt(max(sumsq / count - mean**2, 0.01))``; a network reads
``clip((obs - mean) / std, -5, 5)`` (:meth:`rlwb.policies.PopulationMLP.set_obs_norm`).
Each child's episode adds its observations with a small probability (their Humanoid
setting: 0.01); the sums of a generation are added once it has been evaluated, so the next
generation reads the new mean and std. Sums are float64 and added in a fixed order (chunk by
chunk, step by step), so Ray shards give the numbers of one process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

START_COUNT = 1e-2  # the authors' ``eps``: initial count and sum of squares
MIN_VARIANCE = 1e-2  # std is at least 0.1


@dataclass
class ObsStat:
    """Sums of observations: ``total[D]``, ``total_sq[D]`` (float64) and ``count``."""

    total: torch.Tensor
    total_sq: torch.Tensor
    count: float

    @classmethod
    def start(cls, dim: int) -> ObsStat:
        """The statistics before any observation (mean 0, std 1)."""
        return cls(torch.zeros(dim, dtype=torch.float64),
                   torch.full((dim,), START_COUNT, dtype=torch.float64), START_COUNT)  # fmt: skip

    @classmethod
    def zeros(cls, dim: int) -> ObsStat:
        """Empty sums, for what one evaluation gathers."""
        zero = torch.zeros(dim, dtype=torch.float64)
        return cls(zero, zero.clone(), 0.0)

    def add_rows(self, rows: torch.Tensor) -> None:
        """Add the observations ``rows[k, D]``."""
        x = rows.to(torch.float64)
        self.total += x.sum(0)
        self.total_sq += (x * x).sum(0)
        self.count += len(x)

    def plus(self, other: ObsStat) -> ObsStat:
        return ObsStat(self.total + other.total, self.total_sq + other.total_sq,
                       self.count + other.count)  # fmt: skip

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)`` as float32 ``[D]`` by the rule above."""
        mean = self.total / self.count
        var = (self.total_sq / self.count - mean * mean).clamp(min=MIN_VARIANCE)
        return mean.to(torch.float32), var.sqrt().to(torch.float32)

    def state(self) -> dict[str, Any]:
        return {"total": self.total.clone(), "total_sq": self.total_sq.clone(), "count": self.count}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ObsStat:
        return cls(state["total"].to(torch.float64), state["total_sq"].to(torch.float64),
                   float(state["count"]))  # fmt: skip


class ObsRecorder:
    """A population policy that also sums the observations of the ``chosen`` members
    (bool ``[B]``) into ``stat``: what the networks see, before normalisation."""

    def __init__(self, net: Any, chosen: torch.Tensor) -> None:
        self.net, self.chosen = net, chosen.to(torch.bool)
        self.stat = ObsStat.zeros(net.sizes[0])

    def _record(self, obs: torch.Tensor, members: torch.Tensor | None) -> None:
        pick = self.chosen if members is None else self.chosen[members.cpu()]
        if bool(pick.any()):
            self.stat.add_rows(obs.reshape(len(obs), -1)[pick.to(obs.device)].cpu())

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        self._record(obs, None)
        return self.net(obs)

    def act_some(self, obs: torch.Tensor, members: torch.Tensor, batch: int) -> torch.Tensor:
        self._record(obs, members)
        return self.net.act_some(obs, members, batch)
