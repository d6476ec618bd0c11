"""Learning curves from runs' TensorBoard events: mean over seeds with a bootstrap 95% band.

Runs are grouped by their configuration (``config.yaml``: experiment, task, train and agent
settings), ignoring only what does not change what is learned (seed, run folder, cadences,
budget, device, threads); groups that share an experiment and task are labelled by the
settings that tell them apart. A group counts distinct seeds: runs with the same seed (a
rerun, a resumed branch) are averaged into one curve first. Budgets are aligned honestly:
each seed's curve is interpolated on a common step grid inside its own range, and the group
is drawn only up to the last step that every seed reached (said in the summary), so the
mean never silently changes which seeds it averages. Runs without ``config.yaml`` group by
folder name without its ``-<seed>-<time>`` tail. TensorBoard's reader warnings stay off
stderr.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pathlib
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rlwb.config import flatten, load_yaml
from rlwb.errors import ConfigError
from rlwb.paths import check_output_file

_TAIL = re.compile(r"-(\d+)-\d{8}-\d{6}(-\d+)?$")
# Settings that do not change what a run learns: runs that differ only here are seeds of
# one configuration.
IGNORED = {
    "train.seed", "train.eval_seed", "train.run_dir", "train.run_name", "train.experiment",
    "train.total_steps", "train.eval_every", "train.checkpoint_every", "train.keep_checkpoints",
    "train.log_every", "train.video", "train.video_every", "train.progress",
    "train.progress_every", "train.device", "agent.seed", "agent.torch_threads",
    "agent.compile", "agent.cuda_graph",
}  # fmt: skip


@dataclass
class Group:
    """Runs of one configuration."""

    label: str
    settings: dict[str, object]
    curves: dict[object, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)

    @property
    def seeds(self) -> int:
        return len(self.curves)

    @property
    def runs(self) -> int:
        return sum(len(c) for c in self.curves.values())


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


def _plain_number(value: object) -> object:
    """An integral float as an int, so that settings 1 and 1.0 compare and print alike."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def run_settings(run: pathlib.Path) -> tuple[str, dict[str, object], object]:
    """(experiment and task, the settings that define its configuration, its seed)."""
    config = run / "config.yaml"
    if config.is_file():
        data = load_yaml(config) or {}
        train = data.get("train") or {}
        agent = str(data.get("agent_class", "")).rpartition(":")[2].lower()
        experiment = data.get("experiment") or train.get("experiment") or agent
        if experiment and train.get("task"):
            flat = flatten({"train": train, "agent": data.get("agent") or {}})
            # 1 and 1.0 are one setting (a resumed run's config.yaml has the field's type)
            settings = {k: _plain_number(v) for k, v in flat.items() if k not in IGNORED}
            settings["agent_class"] = data.get("agent_class")
            return f"{experiment} ({train['task']})", settings, train.get("seed")
    match = _TAIL.search(run.name)
    return _TAIL.sub("", run.name), {}, match.group(1) if match else run.name


@contextlib.contextmanager
def _quiet_tensorboard() -> Iterator[None]:
    """TensorBoard's reader logs warnings (no TensorFlow, purged out-of-order steps of a
    resumed run) that are no concern of a plot."""
    logger = logging.getLogger("tensorboard")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def read_scalars(run: pathlib.Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps and values of one scalar tag (the mean where a step repeats: episodes of
    several members that end together)."""
    with _quiet_tensorboard():
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


def group_runs(paths: list[str | os.PathLike[str]], tag: str) -> list[Group]:
    """Runs that have ``tag``, grouped by configuration and labelled apart."""
    groups: dict[tuple[str, str], Group] = {}
    for run in find_runs(paths):
        steps, values = read_scalars(run, tag)
        if not len(steps):
            continue
        base, settings, seed = run_settings(run)
        key = (base, repr(sorted(settings.items(), key=lambda kv: kv[0])))
        group = groups.setdefault(key, Group(base, settings))
        group.curves.setdefault(seed, []).append((steps, values))
    by_base: dict[str, list[Group]] = defaultdict(list)
    for group in groups.values():
        by_base[group.label].append(group)
    for siblings in by_base.values():
        if len(siblings) < 2:
            continue
        keys = set().union(*(g.settings for g in siblings))
        differing = sorted(k for k in keys if len({repr(g.settings.get(k)) for g in siblings}) > 1)
        for g in siblings:
            g.label += " " + ", ".join(f"{k}={g.settings.get(k)}" for k in differing)
    return sorted(groups.values(), key=lambda g: g.label)


def _on_grid(curves: list[tuple[np.ndarray, np.ndarray]], grid: np.ndarray) -> np.ndarray:
    rows = np.full((len(curves), len(grid)), np.nan)
    for i, (steps, values) in enumerate(curves):
        inside = (grid >= steps[0]) & (grid <= steps[-1])
        rows[i, inside] = np.interp(grid[inside], steps, values)
    return rows


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
) -> list[tuple[str, int, int, int]]:
    """Plot ``tag`` of the runs to ``output``; per group: (label, seeds, runs, last step
    every seed reached)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output = check_output_file(output, "plot")  # before reading every run's events
    groups = group_runs(paths, tag)
    if not groups:
        raise ConfigError(f"no run has scalar tag {tag!r}")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    summary = []
    for group in groups:
        runs = [c for curves in group.curves.values() for c in curves]
        start = min(s[0] for s, _ in runs)
        end = min(max(s[-1] for s, _ in curves) for curves in group.curves.values())
        grid = np.linspace(start, end, points) if end > start else np.array([start])
        # one curve per seed (runs of the same seed averaged), then the band over seeds
        per_seed = np.stack(
            [np.nanmean(_on_grid(curves, grid), axis=0) for curves in group.curves.values()]
        )
        mean, low, high = bootstrap_band(per_seed)
        n = group.seeds
        label = f"{group.label}, {n} seed{'s' if n != 1 else ''}"
        (line,) = ax.plot(grid, mean, label=label, marker="o" if len(grid) == 1 else None)
        if n > 1:
            ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
        summary.append((group.label, n, group.runs, int(end)))
    ax.set_xlabel("environment steps")
    ax.set_ylabel(tag)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return summary
