"""``summary.md`` and ``summary.csv`` of a sweep, read from its run folders.

One row per configuration: its settings, the seeds that finished, the final and the best
evaluation as the seed mean with its 95% bootstrap interval, the env steps every seed
reached and the wall time (the slowest seed's, from its TensorBoard event times). The best
configuration (by final mean, in the sweep's mode) comes first. Everything is read from
the trial folders, not from Tune, so a resumed sweep summarises its trials the same way.
"""

from __future__ import annotations

import csv
import json
import math
import pathlib
from dataclasses import dataclass
from typing import Any

from rlwb.sweep_plan import SweepPlan
from rlwb.sweep_trial import STATE_FILE, bootstrap_interval, read_evals


@dataclass
class ConfigRow:
    """One configuration's result over its seeds."""

    folder: str
    settings: dict[str, Any]
    seeds_finished: int
    seeds: int
    final: tuple[float, float, float]
    best: tuple[float, float, float]
    env_steps: int
    wall_time: float


def _wall_time(run: pathlib.Path) -> float:
    """Seconds between a run's first and last TensorBoard event, summed over its files."""
    from rlwb.plot import quiet_tensorboard

    total = 0.0
    with quiet_tensorboard():
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

        for path in run.glob("events.out.tfevents.*"):
            times = [e.wall_time for e in EventFileLoader(str(path)).Load()]
            if times:
                total += max(times) - min(times)
    return total


def _stat(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (math.nan, math.nan, math.nan)
    return (sum(values) / len(values), *bootstrap_interval(values))


def config_rows(plan: SweepPlan) -> list[ConfigRow]:
    """Every trial folder of the sweep, best configuration first."""
    rows = []
    sign = 1.0 if plan.mode == "max" else -1.0
    for state_path in sorted(plan.folder.glob(f"*/{STATE_FILE}")):
        state = json.loads(state_path.read_text())
        seeds = state["seeds"]
        curves = [read_evals(pathlib.Path(s["run"]), plan.metric) for s in seeds.values()]
        curves = [c for c in curves if c]
        finals = [c[max(c)] for c in curves]
        bests = [sign * max(sign * v for v in c.values()) for c in curves]
        rows.append(ConfigRow(
            folder=state_path.parent.name, settings=state["settings"],
            seeds_finished=sum(bool(s["done"]) for s in seeds.values()), seeds=len(seeds),
            final=_stat(finals), best=_stat(bests),
            env_steps=min((max(c) for c in curves), default=0),
            wall_time=max((_wall_time(pathlib.Path(s["run"])) for s in seeds.values()),
                          default=0.0),
        ))  # fmt: skip

    def key(row: ConfigRow) -> float:
        return -sign * row.final[0] if not math.isnan(row.final[0]) else math.inf

    return sorted(rows, key=key)


def _interval(stat: tuple[float, float, float]) -> str:
    mean, low, high = stat
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def write_summary(plan: SweepPlan) -> list[ConfigRow]:
    """Write ``summary.md`` and ``summary.csv`` in the sweep folder; the rows, best first."""
    rows = config_rows(plan)
    keys = plan.keys
    header = ["rank", "trial", *keys, "seeds finished", "final mean", "final low", "final high",
              "best mean", "best low", "best high", "env steps", "wall s"]  # fmt: skip
    with open(plan.folder / "summary.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        for rank, row in enumerate(rows, 1):
            out.writerow([
                rank, row.folder, *(row.settings.get(k, "") for k in keys),
                f"{row.seeds_finished}/{row.seeds}", *row.final, *row.best, row.env_steps,
                round(row.wall_time, 1),
            ])  # fmt: skip
    lines = [
        f"# Sweep {plan.name}: {plan.experiment}",
        "",
        f"Seeds {plan.seeds}; {plan.metric} as the seed mean [95% bootstrap interval]; "
        f"best configuration first ({plan.mode}imum of the final mean).",
        "",
        *(
            [f"{plan.scheduler} stops configurations early: theirs end at fewer env steps.", ""]
            if plan.scheduler in ("asha", "median")
            else []
        ),
        "| rank | " + " | ".join(keys or ["trial"]) + " | seeds finished | final | best | "
        "env steps | wall s |",
        "|" + "---|" * (len(keys or ["trial"]) + 6),
    ]
    for rank, row in enumerate(rows, 1):
        cells = [str(row.settings.get(k, "")) for k in keys] or [row.folder]
        lines.append(
            f"| {rank} | " + " | ".join(cells) + f" | {row.seeds_finished}/{row.seeds} | "
            f"{_interval(row.final)} | {_interval(row.best)} | {row.env_steps:,} | "
            f"{row.wall_time:.1f} |"
        )
    (plan.folder / "summary.md").write_text("\n".join(lines) + "\n")
    return rows
