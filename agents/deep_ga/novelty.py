"""Novelty search for the GA (GA-NS, Such et al. 2017 section 4.3; Lehman & Stanley 2011).

Novelty of an individual = mean distance from its behaviour to the k nearest behaviours in
the current population and the archive (itself excluded). The distance is the squared
Euclidean one (as our reference notes record for the paper's code; the ranking by the k
nearest is the same as for the Euclidean distance, the mean slightly different). Each
individual enters the archive with probability ``archive_probability`` (the paper's 0.01).
"""

from __future__ import annotations

import torch


def novelty(behaviors: torch.Tensor, archive: torch.Tensor, k: int) -> torch.Tensor:
    """``[n]`` novelty of ``behaviors[n, d]`` against themselves and ``archive[a, d]``."""
    pool = torch.cat([behaviors, archive.to(behaviors)])
    dist = torch.cdist(behaviors, pool).square()
    n = len(behaviors)
    dist[torch.arange(n), torch.arange(n)] = torch.inf  # not its own neighbour
    k = min(k, len(pool) - 1)
    if k < 1:
        return torch.zeros(n, dtype=behaviors.dtype)
    return dist.topk(k, dim=1, largest=False).values.mean(1)


def grow_archive(
    archive: torch.Tensor, behaviors: torch.Tensor, probability: float, generator: torch.Generator
) -> torch.Tensor:
    """The archive plus each of ``behaviors`` with ``probability`` (draws from ``generator``)."""
    chosen = torch.rand(len(behaviors), generator=generator, dtype=torch.float64) < probability
    return torch.cat([archive, behaviors[chosen].to(archive)])
