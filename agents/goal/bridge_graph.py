"""The graph GDG's bridge points are planned on: visited states joined by short learned
distances (Search on the Replay Buffer, Eysenbach et al. 2019), with edges that a member
may cut when following them fails.

* Nodes: ``K`` states spread over the achieved-goal space by farthest-point sampling from
  a larger uniform replay sample (:func:`spread`). Uniform replay samples (SoRB's choice)
  crowd where the agent spends its time (on the deceptive maze, the cup under the goal)
  and leave the rarely visited corridors that lead round it without nodes.
* Edges: ``i -> j`` with weight ``D(i, j)`` where the learned distance is at most
  ``max_edge`` steps; longer learned distances are not trusted (they may cut through a
  wall the critic never saw a trajectory cross).
* Observed edges (``certified``): instead of learned distances, the fewest steps a stored
  episode took from near node i to near node j, up to a short window (:func:`node_labels`,
  :func:`observed_steps`). A learned distance that leaks through a wall (no trajectory
  crosses it, so no target covers the pair) then never becomes an edge, and long routes
  are not underestimated (learned distances saturate: ~25 steps for ~55 true).
* Paths to a goal: Bellman-Ford from the goal over the edges a member has not cut
  (:func:`to_goal`); the goal joins the graph through the same short-edge rule.
"""

from __future__ import annotations

import math

import torch


def spread(points: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of ``k`` of ``points[N, G]`` chosen by farthest-point sampling from the
    first one (no host syncs)."""
    n = points.shape[0]
    k = min(k, n)
    chosen = torch.zeros(k, dtype=torch.long, device=points.device)
    gap = torch.linalg.vector_norm(points - points[0], dim=-1)
    for i in range(1, k):
        chosen[i] = gap.argmax()
        gap = torch.minimum(gap, torch.linalg.vector_norm(points - points[chosen[i]], dim=-1))
    return chosen


def edge_weights(nodes: torch.Tensor, points: torch.Tensor, distance, max_edge: float):
    """``[K, K]`` learned ``D(i, j)`` where at most ``max_edge``, else inf; 0 on the
    diagonal. ``distance(obs, goal)`` is D(s, pi(s, goal), goal)."""
    k = nodes.shape[0]
    w = distance(nodes.repeat_interleave(k, 0), points.repeat(k, 1)).reshape(k, k)
    w = torch.where(w <= max_edge, w, math.inf)
    return w.fill_diagonal_(0.0)


def node_labels(path: torch.Tensor, points: torch.Tensor, radius: float) -> torch.Tensor:
    """``[M, T]`` the nearest of ``points [K, G]`` to each stored achieved goal of
    ``path [M, T, G]``, or -1 where none is within ``radius``."""
    m, t, g = path.shape
    flat = path.reshape(-1, g)
    label = torch.empty(flat.shape[0], dtype=torch.long, device=path.device)
    for a in range(0, flat.shape[0], 65536):  # bounded memory for big buffers
        gap, nearest = torch.cdist(flat[a : a + 65536], points).min(1)
        label[a : a + 65536] = torch.where(gap <= radius, nearest, -1)
    return label.reshape(m, t)


def observed_steps(label: torch.Tensor, episode: torch.Tensor, k: int, window: int) -> torch.Tensor:
    """``[K, K]`` fewest stored steps any episode took from node i's region to node j's,
    up to ``window`` (inf: not seen; 0 on the diagonal).

    ``label [M, T]`` the node of each member's stored rows, oldest first (-1: none, from
    :func:`node_labels`); ``episode [M, T]`` their episode ids."""
    t = label.shape[1]
    steps = torch.full((k * k + 1,), math.inf, device=label.device)  # last slot: discard
    for step in range(min(window, t - 1), 0, -1):  # shorter steps overwrite longer ones
        src, dst = label[:, :-step], label[:, step:]
        ok = (src >= 0) & (dst >= 0) & (src != dst) & (episode[:, :-step] == episode[:, step:])
        steps.index_fill_(0, torch.where(ok, src * k + dst, k * k).reshape(-1), float(step))
    return steps[:-1].reshape(k, k).fill_diagonal_(0.0)


def to_goal(edges: torch.Tensor, cut: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """``[P, K]`` shortest path length from each node to each planning member's goal.

    ``edges [K, K]``; ``cut [P, K, K]`` edges a member no longer trusts; ``last [P, K]``
    the node -> goal edges (inf where missing or cut). Bellman-Ford: at most K rounds,
    stopping when nothing changes (one host sync per round)."""
    w = torch.where(cut, math.inf, edges.unsqueeze(0))  # [P, K, K]
    dist = last
    for _ in range(edges.shape[0]):
        nxt = torch.minimum(dist, (w + dist.unsqueeze(1)).amin(-1))
        if torch.equal(nxt, dist):
            break
        dist = nxt
    return dist
