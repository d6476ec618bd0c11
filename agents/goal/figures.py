"""Pictures of the goal agents for TensorBoard's ``add_figure``: the critic's distance
against the true steps-to-goal on the probe set, and GDG's bridge points on a point maze.
The agents compute the numbers (``GoalAgent.probe_distances``,
``BridgePlanner.recent_bridges``); these functions only draw them."""

from __future__ import annotations

from typing import Any

import torch

from rlwb.agents.goal.base import GoalAgent, spearman


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def probe_figure(agent: GoalAgent) -> Any:
    """A scatter of ``agent``'s critic distance against true steps-to-goal on its probe
    set, or None where its task does not know true distances."""
    found = agent.probe_distances()
    if found is None:
        return None
    learned, true = (t.cpu() for t in found)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(true, learned, s=6, alpha=0.4)
    ax.set_xlabel("true steps to goal (cells)")
    ax.set_ylabel(f"learned ({type(agent).__name__} critic)")
    ax.set_title(f"probe: Spearman {spearman(learned, true):.2f}")
    return fig


def draw_bridges(
    task: Any,
    bridges: torch.Tensor,
    title: str = "bridge points",
    nodes: torch.Tensor | None = None,
) -> Any:
    """A matplotlib figure of a point maze (walls grey) with bridge points ``[N, 2]``, the
    map's goal cells and, if given, the planner's graph nodes ``[K, 2]``; for
    TensorBoard's ``add_figure``."""
    plt = _pyplot()
    s = task.maze_size_scaling
    fig, ax = plt.subplots(figsize=(task.cols * 0.5 + 1, task.rows * 0.5 + 0.5))
    for i, row in enumerate(task.grid):
        for j, cell in enumerate(row):
            if cell == 1:
                x, y = task.cell_center(i, j)
                ax.add_patch(plt.Rectangle((x - s / 2, y - s / 2), s, s, color="0.6"))
    goals = task.goal_cells.cpu()
    ax.scatter(goals[:, 0], goals[:, 1], marker="*", s=200, c="gold", label="g cells")
    if nodes is not None and len(nodes):
        n = nodes.cpu()
        ax.scatter(n[:, 0], n[:, 1], s=4, c="0.3", alpha=0.5, label="graph nodes")
    if len(bridges):
        b = bridges.cpu()
        ax.scatter(b[:, 0], b[:, 1], s=14, c="tab:blue", alpha=0.6, label="bridge points")
    ax.set_xlim(-task.cols * s / 2, task.cols * s / 2)
    ax.set_ylim(-task.rows * s / 2, task.rows * s / 2)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)
    return fig
