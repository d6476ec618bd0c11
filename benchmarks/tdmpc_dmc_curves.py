"""TD-MPC on DMControl: rlwb's evaluation returns beside the authors' per-seed results.

Reads run folders of ``rlwb train tdmpc_dmc`` (TensorBoard events and ``config.yaml``),
converts the runner's steps (agent steps) to env steps (agent steps x action repeat, how
the published curves count), and prints, per task, every evaluation of every seed beside
the official TD-MPC returns at the same env step; then the speed of each run in env
steps/s, from the wall-clock stamps of its TensorBoard events and the modification times of
its checkpoints (copy run folders with ``cp -p`` to keep them).

    python benchmarks/tdmpc_dmc_curves.py /work/runs-src/runs     # or any folder of runs

Official numbers: ``results/cheetah-run.csv`` and ``results/walker-walk.csv`` of
github.com/nicklashansen/tdmpc (commit 060b366), per seed, every 20k env steps; carried
over here up to 100k and at 500k (the published means at 100k / 500k are also in
``REFERENCES.md``). The authors' speed: no verified figure for TD-MPC itself; its successor
TD-MPC2 reports about 1.5 h per 1M env steps on an RTX 3090 (~185 env steps/s,
``REFERENCES.md``).
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
from dataclasses import dataclass, field

from rlwb.config import load_yaml
from rlwb.experiments.tdmpc_dmc import ACTION_REPEAT
from rlwb.plot import _quiet_tensorboard, find_runs

# env step -> returns of the authors' seeds 1-5 (results/<task>.csv, nicklashansen/tdmpc).
OFFICIAL: dict[str, dict[int, tuple[int, ...]]] = {
    "cheetah-run": {
        0: (11, 12, 10, 12, 12),
        20_000: (137, 142, 69, 27, 95),
        40_000: (380, 340, 480, 473, 337),
        60_000: (543, 498, 506, 238, 495),
        80_000: (515, 517, 412, 466, 495),
        100_000: (544, 620, 695, 558, 597),
        500_000: (868, 817, 815, 794, 775),
    },
    "walker-walk": {
        0: (36, 37, 35, 35, 33),
        20_000: (546, 535, 734, 129, 291),
        40_000: (956, 954, 963, 943, 952),
        60_000: (966, 956, 950, 976, 970),
        80_000: (973, 956, 942, 957, 968),
        100_000: (961, 966, 962, 955, 971),
        500_000: (980, 979, 977, 972, 976),
    },
}
OFFICIAL_SPEED = "TD-MPC2 (successor, torch.compile, RTX 3090): ~1.5 h / 1M env steps = ~185/s"


@dataclass
class Run:
    """What one run folder says about its progress, returns and speed."""

    path: pathlib.Path
    task: str
    seed: int
    repeat: int
    learning_starts: int
    evals: dict[int, float] = field(default_factory=dict)  # env step -> eval return
    stamps: list[tuple[int, float]] = field(default_factory=list)  # (agent step, wall time)
    checkpoint: int | None = None  # agent step of the newest checkpoint (its mtime: a stamp)


def _scalars(path: pathlib.Path) -> dict[str, list[tuple[int, float, float]]]:
    """Every scalar tag's (step, value, wall time) events."""
    with _quiet_tensorboard():
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
        acc.Reload()
    return {
        tag: [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)]
        for tag in acc.Tags().get("scalars", [])
    }


def read_run(path: pathlib.Path) -> Run | None:
    """The run at ``path``, or None when it is not a run with a ``config.yaml`` and a task."""
    config = path / "config.yaml"
    if not config.is_file():
        return None
    data = load_yaml(config) or {}
    train = data.get("train") or {}
    task = train.get("task")
    if not task:
        return None
    kwargs = train.get("task_kwargs") or {}
    repeat = int(kwargs.get("action_repeat", ACTION_REPEAT.get(task.split("-", 1)[0], 4)))
    run = Run(path, task, int(train.get("seed", 0)), repeat, int(train.get("learning_starts", 0)))
    scalars = _scalars(path)
    for step, value, _ in scalars.get("eval/return_mean", []):
        run.evals[step * repeat] = value
    # every logged event stamps (step, time); the latest per step is after that step's
    # updates (episodes are logged before them, the progress line after)
    stamps: dict[int, float] = {}
    for events in scalars.values():
        for step, _, wall in events:
            stamps[step] = max(wall, stamps.get(step, wall))
    for name in (path / "checkpoints").glob("step_*.pt"):  # written after the step's updates
        step = int(name.stem.split("_")[1])
        stamps[step] = max(name.stat().st_mtime, stamps.get(step, 0.0))
        run.checkpoint = max(step, run.checkpoint or 0)
    run.stamps = sorted(stamps.items())
    return run


def _rate(stamps: list[tuple[int, float]], repeat: int, after: int = 0) -> float | None:
    """Env steps/s between the first stamp at or after agent step ``after`` and the last."""
    window = [(s, w) for s, w in stamps if s >= after]
    if len(window) < 2 or window[-1][1] <= window[0][1]:
        return None
    return (window[-1][0] - window[0][0]) * repeat / (window[-1][1] - window[0][1])


def _cell(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def curves_table(task: str, runs: list[Run]) -> list[str]:
    """Markdown rows: each env step where rlwb evaluated or the authors reported."""
    official = OFFICIAL.get(task, {})
    seeds = sorted({r.seed for r in runs})
    by_seed = {s: {k: v for r in runs if r.seed == s for k, v in r.evals.items()} for s in seeds}
    reached = max((max(r.evals, default=0) for r in runs), default=0)
    steps = sorted({k for e in by_seed.values() for k in e} | {k for k in official if k <= reached})
    head = " | ".join(f"rlwb seed {s}" for s in seeds)
    lines = [
        f"### {task} (env steps = agent steps x {runs[0].repeat})",
        "",
        f"| env steps | {head} | rlwb mean | official seeds 1-5 | official mean |",
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
    for mark in (100_000, 500_000):
        if mark in official and mark > reached:
            mean = statistics.mean(official[mark])
            lines.append(f"\nofficial mean at {mark:,} env steps: {mean:.0f} (not reached here)")
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
        learning = _rate(r.stamps, r.repeat, after=r.learning_starts) if r.learning_starts else None
        lines.append(
            f"| {r.path.name} | {last:,} | {last * r.repeat:,} | {hours:.2f} | "
            f"{_cell(_rate(r.stamps, r.repeat), 2)} | {_cell(learning, 2)} |"
        )
    lines += [
        "",
        "agent steps: the newest TensorBoard event or checkpoint. The seed steps (uniform random",
        "actions, no updates) run at the simulator's speed, so early whole-run rates are high.",
        f"Official code's speed for reference: {OFFICIAL_SPEED}.",
    ]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["runs"], help="run folders or their parents")
    args = parser.parse_args(argv)
    runs = [r for r in (read_run(p) for p in find_runs(args.paths)) if r is not None]
    if not runs:
        raise SystemExit("no run folders with a config.yaml under " + " ".join(args.paths))
    runs.sort(key=lambda r: (r.task, r.seed, r.path.name))
    for task in sorted({r.task for r in runs}):
        print("\n".join(curves_table(task, [r for r in runs if r.task == task])), end="\n\n")
    print("### speed (wall clock of the TensorBoard events; evaluations included)\n")
    print("\n".join(speed_table(runs)))


if __name__ == "__main__":
    main()
