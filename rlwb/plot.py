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
import textwrap
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rlwb.config import flatten
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
    task: str = ""
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
    """(experiment and task, the settings that define its configuration, its seed); the
    settings hold ``train.task`` for runs with a ``config.yaml``."""
    from rlwb.saved_run import read_config  # the run format (torch and the engine: lazily)

    data = read_config(run)
    if data is not None:
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
def quiet_tensorboard() -> Iterator[None]:
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
    with quiet_tensorboard():
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
        task = str(settings.get("train.task", base))
        group = groups.setdefault(key, Group(base, settings, task))
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


def _mean_rows(rows: np.ndarray) -> np.ndarray:
    """Mean over rows ignoring NaN, NaN where a column has no value (without numpy's
    "Mean of empty slice" warning)."""
    have = ~np.isnan(rows)
    count = have.sum(axis=0)
    total = np.where(have, rows, 0.0).sum(axis=0)
    return np.divide(total, count, out=np.full(rows.shape[1], np.nan), where=count > 0)


def bootstrap_band(
    curves: np.ndarray, samples: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and bootstrap 95% interval over rows (seeds) of ``curves[S, T]`` (NaN = no data)."""
    rng = np.random.default_rng(seed)
    mean = _mean_rows(curves)
    low, high = mean.copy(), mean.copy()
    for t in range(curves.shape[1]):
        column = curves[:, t][~np.isnan(curves[:, t])]
        if len(column) > 1:
            means = rng.choice(column, size=(samples, len(column)), replace=True).mean(axis=1)
            low[t], high[t] = np.percentile(means, [2.5, 97.5])
    return mean, low, high


def group_curve(group: Group, points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(grid, mean, low, high) of a group, up to the last step every seed reached."""
    runs = [c for curves in group.curves.values() for c in curves]
    start = min(s[0] for s, _ in runs)
    end = min(max(s[-1] for s, _ in curves) for curves in group.curves.values())
    grid = np.linspace(start, end, points) if end > start else np.array([start])
    # one curve per seed (runs of the same seed averaged), then the band over seeds
    per_seed = np.stack([_mean_rows(_on_grid(curves, grid)) for curves in group.curves.values()])
    return (grid, *bootstrap_band(per_seed))


def _panels(groups: list[Group]) -> dict[str, list[Group]]:
    """Groups by task, in order of task name: one panel each."""
    panels: dict[str, list[Group]] = defaultdict(list)
    for group in groups:
        panels[group.task].append(group)
    return dict(sorted(panels.items(), key=lambda item: item[0].lower()))


def _legend_label(group: Group) -> str:
    """The group's label without its task (the panel's title), wrapped to the panel."""
    label = group.label.replace(f" ({group.task})", "", 1)
    n = group.seeds
    return textwrap.fill(f"{label}, {n} seed{'s' if n != 1 else ''}", width=LEGEND_WIDTH)


LEGEND_WIDTH = 58  # characters per legend line: a panel's width at the legend's font size
PANEL_INCHES = (6.0, 3.2)
LEGEND_LINE_INCHES = 0.16


def plot_runs(
    paths: list[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    tag: str = "eval/return_mean",
    points: int = 200,
) -> list[tuple[str, int, int, int]]:
    """Plot ``tag`` of the runs to ``output``, one panel per task with its legend below it
    (never over the curves); per group: (label, seeds, runs, last step every seed
    reached)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output = check_output_file(output, "plot")  # before reading every run's events
    groups = group_runs(paths, tag)
    if not groups:
        raise ConfigError(f"no run has scalar tag {tag!r}")
    panels = _panels(groups)
    cols = min(2, len(panels))
    rows = -(-len(panels) // cols)
    labels = {id(g): _legend_label(g) for g in groups}
    legend_lines = [
        max(
            sum(labels[id(g)].count("\n") + 1 for g in members)
            for members in list(panels.values())[r * cols : (r + 1) * cols]
        )
        for r in range(rows)
    ]
    legend_heights = [LEGEND_LINE_INCHES * (n + 1) for n in legend_lines]
    heights = [h for lines in legend_heights for h in (PANEL_INCHES[1], lines)]
    fig = plt.figure(figsize=(PANEL_INCHES[0] * cols, sum(heights)), layout="constrained")
    grid = fig.add_gridspec(2 * rows, cols, height_ratios=heights)
    summary = []
    for index, (task, members) in enumerate(panels.items()):
        row, col = divmod(index, cols)
        ax = fig.add_subplot(grid[2 * row, col])
        for group in members:
            steps, mean, low, high = group_curve(group, points)
            (line,) = ax.plot(
                steps, mean, label=labels[id(group)], marker="o" if len(steps) == 1 else None
            )
            if group.seeds > 1:
                ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
            summary.append((group.label, group.seeds, group.runs, int(steps[-1])))
        ax.set_title(task, fontsize="medium")
        ax.set_xlabel("environment steps")
        ax.set_ylabel(tag)
        ax.grid(alpha=0.3)
        legend_ax = fig.add_subplot(grid[2 * row + 1, col])
        legend_ax.axis("off")
        legend_ax.legend(
            *ax.get_legend_handles_labels(), loc="upper left", fontsize="x-small", frameon=False
        )
    fig.savefig(output, dpi=100)
    plt.close(fig)
    summary.sort(key=lambda item: item[0])
    return summary
