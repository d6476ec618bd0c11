"""Learning curves from runs' TensorBoard events: mean over seeds with a bootstrap 95% band.

Runs are grouped by experiment (or agent) and task (from each run's ``config.yaml``; else from the
folder name without its ``-<seed>-<time>`` tail). Each run's curve is linearly interpolated
onto a common step grid inside its own step range; at each grid step, the band is the
2.5-97.5 percentile of the mean over seeds resampled with replacement.
"""

from __future__ import annotations

import os
import pathlib
import re
from collections import defaultdict

import numpy as np

from rlwb.config import load_yaml
from rlwb.errors import ConfigError

_TAIL = re.compile(r"-\d+-\d{8}-\d{6}(-\d+)?$")


def find_runs(paths: list[str | os.PathLike[str]]) -> list[pathlib.Path]:
    """Run folders (those holding TensorBoard event files) under the given paths."""
    runs: list[pathlib.Path] = []
    for raw in paths:
        path = pathlib.Path(raw)
        if not path.exists():
            raise ConfigError(f"no run at {path}")
        found = sorted({p.parent for p in path.rglob("events.out.tfevents.*")})
        if not found:
            raise ConfigError(f"no TensorBoard events under {path}")
        runs.extend(p for p in found if p not in runs)
    return runs


def group_name(run: pathlib.Path) -> str:
    config = run / "config.yaml"
    if config.is_file():
        data = load_yaml(config) or {}
        train = data.get("train") or {}
        agent = str(data.get("agent_class", "")).rpartition(":")[2].lower()
        experiment = data.get("experiment") or train.get("experiment") or agent
        if experiment and train.get("task"):
            return f"{experiment} ({train['task']})"
    return _TAIL.sub("", run.name)


def read_scalars(run: pathlib.Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps and values of one scalar tag (the mean where a step repeats: episodes of
    several members that end together)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags().get("scalars", []):
        return np.zeros(0), np.zeros(0)
    by_step: dict[int, list[float]] = defaultdict(list)
    for event in acc.Scalars(tag):
        by_step[event.step].append(event.value)
    steps = sorted(by_step)
    values = [float(np.mean(by_step[s])) for s in steps]
    return np.array(steps, dtype=np.float64), np.array(values, dtype=np.float64)


def bootstrap_band(
    curves: np.ndarray, samples: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and bootstrap 95% interval over rows (seeds) of ``curves[S, T]`` (NaN = no data)."""
    rng = np.random.default_rng(seed)
    mean = np.nanmean(curves, axis=0)
    low, high = mean.copy(), mean.copy()
    for t in range(curves.shape[1]):
        column = curves[:, t][~np.isnan(curves[:, t])]
        if len(column) > 1:
            means = rng.choice(column, size=(samples, len(column)), replace=True).mean(axis=1)
            low[t], high[t] = np.percentile(means, [2.5, 97.5])
    return mean, low, high


def plot_runs(
    paths: list[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    tag: str = "eval/return_mean",
    points: int = 200,
) -> dict[str, int]:
    """Plot ``tag`` of the runs to ``output``; returns seeds per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for run in find_runs(paths):
        steps, values = read_scalars(run, tag)
        if len(steps):
            groups[group_name(run)].append((steps, values))
    if not groups:
        raise ConfigError(f"no run has scalar tag {tag!r}")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, runs in sorted(groups.items()):
        grid = np.linspace(min(s[0] for s, _ in runs), max(s[-1] for s, _ in runs), points)
        curves = np.full((len(runs), points), np.nan)
        for i, (steps, values) in enumerate(runs):
            inside = (grid >= steps[0]) & (grid <= steps[-1])
            curves[i, inside] = np.interp(grid[inside], steps, values)
        mean, low, high = bootstrap_band(curves)
        (line,) = ax.plot(
            grid, mean, label=f"{name}, {len(runs)} seed{'s' if len(runs) > 1 else ''}"
        )
        if len(runs) > 1:
            ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(tag)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return {name: len(runs) for name, runs in groups.items()}
