"""TD-MPC on DMControl: rlwb's evaluation returns beside the authors' per-seed results.

Reads the TD-MPC run folders among the given ones (``config.yaml``'s agent class, or for
folders without one the experiment name; other agents' runs are skipped and counted) and
prints, per task, every evaluation of every seed beside the authors' returns at the same env
step (simulator steps = agent steps x action repeat, how the published curves count); then
the speed of each run in env steps/s, from the wall-clock stamps of its TensorBoard events
and the modification times of its checkpoints (copy run folders with ``cp -p`` to keep them).

    python benchmarks/tdmpc_dmc_curves.py runs     # or any folder of runs

A run that records ``step_scale`` in ``config.yaml`` logs env steps already; an older run
logged agent steps, converted here with the action repeat in its task arguments (1 when it
has none).

Published numbers: ``benchmarks/tdmpc_published.csv``, extracted from ``results/<task>.csv``
of github.com/nicklashansen/tdmpc (the file names its commit): 5 seeds, every 20k env steps
to 500k, then every 100k (humanoid to 3M, dog to 5M). The authors' code runs only on CUDA;
its update and plan on CPU beside rlwb's: ``benchmarks/tdmpc_vs_authors.py``.
"""

from __future__ import annotations

import argparse
import collections
import csv
import pathlib
import statistics
from dataclasses import dataclass, field

from rlwb.plot import find_runs, quiet_tensorboard
from rlwb.saved_run import read_config as read_run_config

PUBLISHED_CSV = pathlib.Path(__file__).with_name("tdmpc_published.csv")
ALIASES = {"ball_in_cup-catch": "cup-catch"}  # rlwb's id -> the id the authors report
TDMPC_CLASS = "TDMPC"


def published(path: pathlib.Path = PUBLISHED_CSV) -> dict[str, dict[int, tuple[int, ...]]]:
    """task -> env step -> the authors' returns of seeds 1-5 (those recorded)."""
    table: dict[str, dict[int, tuple[int, ...]]] = collections.defaultdict(dict)
    with path.open() as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        for row in rows:
            seeds = [row[k] for k in sorted(row) if k.startswith("seed_")]
            returns = tuple(int(float(v)) for v in seeds if v)
            table[row["task"]][int(row["env_step"])] = returns
    return dict(table)


@dataclass
class Run:
    """What one run folder says about its progress, returns and speed (in env steps)."""

    path: pathlib.Path
    task: str
    seed: int
    repeat: int
    learning_starts: int  # env steps
    evals: dict[int, float] = field(default_factory=dict)  # env step -> eval return
    stamps: list[tuple[int, float]] = field(default_factory=list)  # (env step, wall time)
    checkpoint: int | None = None  # env step of the newest checkpoint (its mtime: a stamp)


def _scalars(path: pathlib.Path) -> dict[str, list[tuple[int, float, float]]]:
    """Every scalar tag's (step, value, wall time) events."""
    with quiet_tensorboard():
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
        acc.Reload()
    return {
        tag: [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)]
        for tag in acc.Tags().get("scalars", [])
    }


def is_tdmpc(config: dict) -> bool:
    """Whether a run's ``config.yaml`` is a TD-MPC run's."""
    agent = config.get("agent_class")
    if agent:
        return str(agent).rpartition(":")[2] == TDMPC_CLASS
    return str(config.get("experiment") or "").startswith("tdmpc")


def read_config(path: pathlib.Path) -> dict | None:
    """A run folder's ``config.yaml`` when it names a task, else None."""
    data = read_run_config(path) or {}
    return data if (data.get("train") or {}).get("task") else None


def read_run(path: pathlib.Path, data: dict) -> Run:
    """The run at ``path`` whose ``config.yaml`` holds ``data``."""
    train = data["train"]
    task = ALIASES.get(train["task"], train["task"])
    repeat = int((train.get("task_kwargs") or {}).get("action_repeat", 1))
    logged = int(data.get("step_scale", 1))  # env steps per logged step
    learning_starts = int(train.get("learning_starts", 0)) * repeat
    run = Run(path, task, int(train.get("seed", 0)), repeat, learning_starts)
    scalars = _scalars(path)
    for step, value, _ in scalars.get("eval/return_mean", []):
        run.evals[step * repeat // logged] = value
    # every logged event stamps (step, time); the latest per step is after that step's
    # updates (episodes are logged before them, the progress line after)
    stamps: dict[int, float] = {}
    for events in scalars.values():
        for step, _, wall in events:
            env_step = step * repeat // logged
            stamps[env_step] = max(wall, stamps.get(env_step, wall))
    for name in (path / "checkpoints").glob("step_*.pt"):  # written after the step's updates
        step = int(name.stem.split("_")[1]) * repeat  # checkpoints are named in agent steps
        stamps[step] = max(name.stat().st_mtime, stamps.get(step, 0.0))
        run.checkpoint = max(step, run.checkpoint or 0)
    run.stamps = sorted(stamps.items())
    return run


def _rate(stamps: list[tuple[int, float]], after: int = 0) -> float | None:
    """Env steps/s between the first stamp at or after env step ``after`` and the last."""
    window = [(s, w) for s, w in stamps if s >= after]
    if len(window) < 2 or window[-1][1] <= window[0][1]:
        return None
    return (window[-1][0] - window[0][0]) / (window[-1][1] - window[0][1])


def _cell(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def curves_table(task: str, runs: list[Run], official: dict[int, tuple[int, ...]]) -> list[str]:
    """Markdown rows: each env step where rlwb evaluated or the authors reported."""
    seeds = sorted({r.seed for r in runs})
    by_seed = {s: {k: v for r in runs if r.seed == s for k, v in r.evals.items()} for s in seeds}
    reached = max((max(r.evals, default=0) for r in runs), default=0)
    steps = sorted({k for e in by_seed.values() for k in e} | {k for k in official if k <= reached})
    head = " | ".join(f"rlwb seed {s}" for s in seeds)
    repeats = ", ".join(str(k) for k in sorted({r.repeat for r in runs}))
    lines = [
        f"### {task} (env steps = agent steps x {repeats})",
        "",
        f"| env steps | {head} | rlwb mean | authors' seeds 1-5 | authors' mean |",
        "|---:|" + "---:|" * len(seeds) + "---:|---|---:|",
    ]
    for step in steps:
        mine = [by_seed[s].get(step) for s in seeds]
        have = [v for v in mine if v is not None]
        theirs = official.get(step)
        lines.append(
            f"| {step:,} | "
            + " | ".join(_cell(v) for v in mine)
            + f" | {_cell(statistics.mean(have) if have else None)}"
            + f" | {', '.join(map(str, theirs)) if theirs else '-'}"
            + f" | {_cell(statistics.mean(theirs) if theirs else None)} |"
        )
    if not any(r.evals for r in runs):
        lines.append("\nno rlwb evaluation in these runs yet (their progress: speed table)")
    if not official:
        lines.append("\nno published TD-MPC result for this task")
    for mark in sorted({100_000, 500_000, max(official, default=0)}):
        if mark in official and mark > reached:
            mean = statistics.mean(official[mark])
            lines.append(f"\nauthors' mean at {mark:,} env steps: {mean:.0f} (not reached here)")
    return lines


def speed_table(runs: list[Run]) -> list[str]:
    lines = [
        "| run | agent steps | env steps | wall h | env steps/s, whole run | "
        "env steps/s, after the seed steps and catch-up |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        last = r.stamps[-1][0] if r.stamps else 0
        hours = (r.stamps[-1][1] - r.stamps[0][1]) / 3600 if r.stamps else 0.0
        learning = _rate(r.stamps, after=r.learning_starts) if r.learning_starts else None
        lines.append(
            f"| {r.path.name} | {last // r.repeat:,} | {last:,} | {hours:.2f} | "
            f"{_cell(_rate(r.stamps), 2)} | {_cell(learning, 2)} |"
        )
    lines += [
        "",
        "steps: the newest TensorBoard event or checkpoint. The seed steps (uniform random",
        "actions, no updates) run at the simulator's speed, so early whole-run rates are high.",
    ]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["runs"], help="run folders or their parents")
    args = parser.parse_args(argv)
    configs = [(p, read_config(p)) for p in find_runs(args.paths)]
    configs = [(p, c) for p, c in configs if c is not None]
    others = collections.Counter(
        str(c.get("experiment") or c.get("agent_class")) for _, c in configs if not is_tdmpc(c)
    )
    runs = [read_run(p, c) for p, c in configs if is_tdmpc(c)]
    if not runs:
        raise SystemExit("no TD-MPC run folders with a config.yaml under " + " ".join(args.paths))
    if others:
        skipped = ", ".join(f"{name} x{n}" for name, n in sorted(others.items()))
        print(f"skipped runs of other agents: {skipped}\n")
    runs.sort(key=lambda r: (r.task, r.seed, r.path.name))
    table = published()
    for task in sorted({r.task for r in runs}):
        lines = curves_table(task, [r for r in runs if r.task == task], table.get(task, {}))
        print("\n".join(lines), end="\n\n")
    print("### speed (wall clock of the TensorBoard events; evaluations included)\n")
    print("\n".join(speed_table(runs)))


if __name__ == "__main__":
    main()
