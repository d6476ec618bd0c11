"""Print a Deep GA run's learning curve: frames vs elite, best and mean score per generation.

Reads the run's TensorBoard events (``charts/*`` of :class:`rlwb.agents.deep_ga.DeepGA`:
elite validation score, population max / mean fitness, generation seconds; ``eval/*`` of
the runner's evaluations) and, with ``--time-log``, the ``/usr/bin/time -v`` report of the
process for the CPU time it actually got on a shared machine.

    OMP_NUM_THREADS=1 nice -n 10 /usr/bin/time -v timeout -s INT 3600 \\
        rlwb train deep_ga_humanoid --train.run-dir runs > log.txt 2>&1
    python benchmarks/deep_ga_humanoid_curve.py runs/deep_ga_humanoid-Humanoid-v5-0-* \\
        --time-log log.txt --every 5
"""

from __future__ import annotations

import argparse
import pathlib
import re

import numpy as np

from rlwb.plot import read_scalars

COLUMNS = ("generation", "elite_score", "fitness_max", "fitness_mean", "generation_seconds")
TIME_FIELDS = {  # /usr/bin/time -v line prefix: our name
    "User time (seconds)": "user_s",
    "System time (seconds)": "system_s",
    "Elapsed (wall clock) time (h:mm:ss or m:ss)": "wall",
    "Percent of CPU this job got": "cpu_percent",
}


def curve(run: pathlib.Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Frames and the per-generation charts, aligned on the generations' frame counts."""
    frames, _ = read_scalars(run, "charts/generation")
    values = {}
    for name in COLUMNS:
        steps, vals = read_scalars(run, f"charts/{name}")
        if not np.array_equal(steps, frames):
            raise SystemExit(f"{run}: charts/{name} is not logged once per generation")
        values[name] = vals
    return frames, values


def cpu_report(path: pathlib.Path) -> dict[str, str]:
    found = {}
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.strip().partition(": ")
        if key in TIME_FIELDS:
            found[TIME_FIELDS[key]] = value.strip()
    return found


def _seconds(wall: str) -> float:
    parts = [float(p) for p in re.split(r":", wall)]
    return sum(p * 60**i for i, p in enumerate(reversed(parts)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=pathlib.Path)
    parser.add_argument("--time-log", type=pathlib.Path, help="/usr/bin/time -v output")
    parser.add_argument("--every", type=int, default=1, help="print every n-th generation")
    args = parser.parse_args()
    frames, values = curve(args.run)
    if not len(frames):
        raise SystemExit(f"{args.run}: no generations logged")
    wall = np.cumsum(values["generation_seconds"])
    print("| generation | frames | wall s | elite score | best child | mean child |")
    print("|---:|---:|---:|---:|---:|---:|")
    last = len(frames) - 1
    for i in range(len(frames)):
        if i % args.every and i != last:
            continue
        print(f"| {values['generation'][i]:.0f} | {frames[i]:,.0f} | {wall[i]:,.0f} | "
              f"{values['elite_score'][i]:,.1f} | {values['fitness_max'][i]:,.1f} | "
              f"{values['fitness_mean'][i]:,.1f} |")  # fmt: skip
    eval_steps, eval_means = read_scalars(args.run, "eval/return_mean")
    for step, mean in zip(eval_steps, eval_means, strict=True):
        print(f"evaluation at {step:,.0f} frames: mean return {mean:,.1f}")
    if args.time_log:
        cpu = cpu_report(args.time_log)
        if "user_s" in cpu and "wall" in cpu:
            used = float(cpu["user_s"]) + float(cpu.get("system_s", 0))
            elapsed = _seconds(cpu["wall"])
            share = used / elapsed
            print(f"CPU: {used:,.0f} s user+system in {elapsed:,.0f} s wall ({share:.2f} "
                  f"cores on average; time -v: {cpu.get('cpu_percent')})")  # fmt: skip


if __name__ == "__main__":
    main()
