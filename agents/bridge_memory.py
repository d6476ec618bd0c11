"""Which start/goal pairs the distance gradient alone fails on: GDG's memory of its recent
training episodes, so that bridge points are planned from an episode's start only where
chasing the goal directly has been seen to stall.

Each finished training episode leaves ``(start, goal, stalled)``: its first achieved goal,
its desired goal, and whether chasing the desired goal directly stalled at some point
(``rlwb.agents.bridges``'s stall test). :meth:`EpisodeMemory.stalls_here` asks, for new
episodes, whether most of the remembered episodes that began within ``radius`` of the same
start and chased a goal within ``radius`` of the same goal stalled (at least ``least`` of
them, else "no"). A ring buffer of the last ``size`` episodes: the policy changes, so old
outcomes expire.
"""

from __future__ import annotations

import torch


class EpisodeMemory:
    """Ring buffer of ``(start, goal, stalled)`` per finished episode (see the module doc)."""

    def __init__(self, size: int, goal_dim: int, radius: float, least: int, device) -> None:
        self.size, self.radius, self.least = size, radius, least
        z = dict(device=device)
        self.starts = torch.zeros(size, goal_dim, **z)
        self.goals = torch.zeros(size, goal_dim, **z)
        self.stalled = torch.zeros(size, dtype=torch.bool, **z)
        self.count = 0

    def record(self, starts: torch.Tensor, goals: torch.Tensor, stalled: torch.Tensor) -> None:
        """Add episodes ``starts [N, G]``, ``goals [N, G]``, ``stalled [N]`` (N may be 0)."""
        n = starts.shape[0]
        if self.size == 0 or n == 0:
            return
        slots = (self.count + torch.arange(n, device=starts.device)) % self.size
        self.starts[slots], self.goals[slots], self.stalled[slots] = starts, goals, stalled
        self.count += n

    def stalls_here(self, starts: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        """``[B]`` bool: at least ``least`` remembered episodes began near each start and
        chased a goal near each goal, and at least half of them stalled."""
        n = min(self.count, self.size)
        if n == 0:
            return torch.zeros(starts.shape[0], dtype=torch.bool, device=starts.device)
        near = (torch.cdist(starts, self.starts[:n]) <= self.radius) & (
            torch.cdist(goals, self.goals[:n]) <= self.radius
        )  # [B, n]
        seen = near.sum(1)
        stalls = (near & self.stalled[:n]).sum(1)
        return (seen >= self.least) & (2 * stalls >= seen)

    def state_dict(self) -> dict:
        return {"starts": self.starts.cpu(), "goals": self.goals.cpu(),
                "stalled": self.stalled.cpu(), "count": self.count}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        dev = self.starts.device
        self.starts = state["starts"].to(dev).clone()
        self.goals = state["goals"].to(dev).clone()
        self.stalled = state["stalled"].to(dev).clone()
        self.count = int(state["count"])
