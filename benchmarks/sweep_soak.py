"""Reliability soak of ``rlwb sweep``: kill trial workers and the driver, check every run.

    python benchmarks/sweep_soak.py                       # 2 configs x 2 seeds, >= 20 kills
    python benchmarks/sweep_soak.py --smoke               # seconds of training, one kill

Three phases on one local Ray cluster (a ``ray start`` head node this script stops):

1. plain: every (configuration, seed) as its own ``rlwb train`` process, all in parallel:
   the reference final states and the reference wall time;
2. clean: the same trials as one uninterrupted ``rlwb sweep``: the sweep's wall overhead;
3. soak: the same sweep again while SIGKILL or SIGTERM hits a random trial worker or the
   driver at random times (a killed driver is restarted with ``rlwb sweep --resume``),
   until the sweep finishes with at least ``--kills`` kills behind it.

Every run of the clean and soak sweeps is compared with its plain run (agent, engine,
random states and counters of the final checkpoint, bit for bit). The table reports kills
survived, trials lost (a configuration with a missing or differing seed run) and the
clean sweep's wall time against the plain processes'.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import tempfile
import time

from rlwb.ray_nodes import LOCAL_ENV, local_cluster
from rlwb.sweep_check import runs_differ

EXPERIMENT = "ddpg_pendulum"


def _train_args(steps: int) -> list[str]:
    every = max(steps // 10, 50)
    return ["--train.total-steps", str(steps), "--train.learning-starts", str(min(200, steps // 2)),
            "--train.eval-every", str(every * 5), "--train.eval-episodes", "2",
            "--train.eval-horizon", "50", "--train.checkpoint-every", str(every),
            "--train.progress-every", "0"]  # fmt: skip


def _env() -> dict[str, str]:
    return dict(os.environ, **LOCAL_ENV, OMP_NUM_THREADS="1")


def plain_runs(gammas: list[str], seeds: list[int], steps: int, folder: pathlib.Path) -> float:
    """Every (gamma, seed) as ``rlwb train`` in parallel; the wall time."""
    start = time.perf_counter()
    procs = []
    for gamma in gammas:
        for seed in seeds:
            command = [
                sys.executable,
                "-m",
                "rlwb.cli",
                "train",
                EXPERIMENT,
                *_train_args(steps),
                "--agent.gamma",
                gamma,
                "--train.seed",
                str(seed),
                "--train.run-dir",
                str(folder),
                "--train.run-name",
                f"{gamma}-{seed}",
            ]
            procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, env=_env()))
    if any(p.wait() for p in procs):
        raise SystemExit("a plain run failed")
    return time.perf_counter() - start


def _sweep_command(args: argparse.Namespace, folder: pathlib.Path, address: str) -> list[str]:
    return [sys.executable, "-m", "rlwb.cli", "sweep", EXPERIMENT, "--seeds",
            *map(str, args.seeds), "--grid", "agent.gamma=" + ",".join(args.gammas),
            "--sweep-dir", str(folder.parent), "--name", folder.name, "--address", address,
            "--cpus-per-trial", "1", "--max-failures", "-1", *_train_args(args.steps)]  # fmt: skip


def _restart_command(args: argparse.Namespace, folder: pathlib.Path, address: str) -> list[str]:
    """``rlwb sweep --resume``; the first command again if the driver died before it saved
    the sweep's plan."""
    if not (folder / "sweep.yaml").is_file():
        return _sweep_command(args, folder, address)
    return [sys.executable, "-m", "rlwb.cli", "sweep", "--resume", str(folder)]


def _start(command: list[str], log: pathlib.Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_env())


def _workers(folder: pathlib.Path) -> list[tuple[int, float]]:
    """(worker pid, start time) of the trials that are not finished."""
    found = []
    for path in folder.glob("*/trial.json"):
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not all(s["done"] for s in state["seeds"].values()):
            found.append((int(state["worker_pid"]), float(state["started"])))
    return found


def _stop_driver(driver: subprocess.Popen[bytes], sig: int) -> None:
    driver.send_signal(sig)
    try:
        driver.wait(timeout=60)
    except subprocess.TimeoutExpired:
        driver.kill()
        driver.wait()


def _running_since(folder: pathlib.Path, since: float) -> list[int]:
    """Workers of unfinished trials that started after ``since`` (epoch seconds)."""
    return [pid for pid, started in _workers(folder) if started > since]


def soak(args: argparse.Namespace, folder: pathlib.Path, address: str) -> tuple[int, float]:
    """The sweep under kills; (kills, wall seconds). Each kill waits until trials run again
    after the previous one, then a random gap, so every kill hits a working sweep."""
    rng = random.Random(args.kill_seed)
    log = folder.parent / f"{folder.name}.log"
    start = time.perf_counter()
    driver = _start(_sweep_command(args, folder, address), log)
    kills, since = 0, time.time()
    try:
        while True:
            gap_end = None
            while driver.poll() is None:
                if gap_end is None and _running_since(folder, since):
                    gap_end = time.monotonic() + rng.uniform(*args.kill_every)
                if gap_end is not None and time.monotonic() > gap_end and kills < args.kills:
                    break
                time.sleep(0.2)
            code = driver.poll()
            if code is not None:
                if code == 0 and (folder / "summary.md").is_file():
                    break  # finished (with fewer kills than asked if the runs were too short)
                if code == 2:  # an rlwb error: resuming would repeat it
                    raise SystemExit(f"the sweep failed:\n{log.read_text()[-2000:]}")
                print(f"driver exited with {code}; rlwb sweep --resume", flush=True)
                driver, since = _start(_restart_command(args, folder, address), log), time.time()
                continue
            sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
            workers = _running_since(folder, since)
            kills += 1
            since = time.time()
            if workers and rng.random() < 0.7:
                pid = rng.choice(workers)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                print(f"kill {kills}: {sig.name} trial worker {pid}", flush=True)
            else:
                _stop_driver(driver, sig)
                print(f"kill {kills}: {sig.name} driver; rlwb sweep --resume", flush=True)
                driver = _start(_restart_command(args, folder, address), log)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    return kills, time.perf_counter() - start


def check(folder: pathlib.Path, plain: pathlib.Path) -> tuple[int, list[str]]:
    """(trials lost, why) comparing every seed run with its plain run."""
    lost, why = 0, []
    states = sorted(folder.glob("*/trial.json"))
    for path in states:
        state = json.loads(path.read_text())
        gamma = state["settings"]["agent.gamma"]
        problems = []
        for seed, info in state["seeds"].items():
            if not info["done"]:
                problems.append(f"seed {seed} unfinished")
                continue
            diff = runs_differ(info["run"], plain / f"{gamma}-{seed}")
            if diff:
                problems.append(f"seed {seed}: {diff}")
        if problems:
            lost += 1
            why.append(f"gamma={gamma}: " + "; ".join(problems))
    return lost, why


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gammas", nargs="+", default=["0.98", "0.99"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--steps", type=int, default=6000, help="agent steps per run")
    p.add_argument("--kills", type=int, default=20)
    p.add_argument(
        "--kill-every",
        nargs=2,
        type=float,
        default=[4.0, 12.0],
        help="seconds between kills, uniform in [LOW, HIGH]",
    )
    p.add_argument("--kill-seed", type=int, default=0)
    p.add_argument("--cpus", type=float, default=2, help="CPUs of the local Ray node")
    p.add_argument("--smoke", action="store_true", help="1 config, 1 seed, 300 steps, 1 kill")
    p.add_argument("--out", default=None, help="also append the table to this file")
    args = p.parse_args(argv)
    if args.smoke:
        args.gammas, args.seeds, args.steps, args.kills = ["0.99"], [0], 300, 1
        args.kill_every = [0.5, 1.0]
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, local_cluster(1, args.cpus) as address:
        root = pathlib.Path(tmp)
        plain_wall = plain_runs(args.gammas, args.seeds, args.steps, root / "plain")
        rows = []
        if not args.smoke:
            start = time.perf_counter()
            clean = root / "clean"
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            code = subprocess.run(_sweep_command(args, clean, address), env=_env(), **quiet)
            code = code.returncode
            clean_wall = time.perf_counter() - start
            lost, why = check(clean, root / "plain") if code == 0 else (len(args.gammas), [])
            rows.append(("clean sweep", 0, lost, clean_wall, why))
        kills, soak_wall = soak(args, root / "soak", address)
        lost, why = check(root / "soak", root / "plain")
        rows.append(("soak", kills, lost, soak_wall, why))
    trials = len(args.gammas)
    lines = [
        f"# sweep soak: {trials} configs x {len(args.seeds)} seeds, {args.steps} steps each, "
        f"load average {load[0]:.2f} at start",
        "",
        "| phase | kills survived | trials lost | wall s | vs plain processes |",
        "|---|---|---|---|---|",
        f"| plain processes | - | - | {plain_wall:.1f} | 1.00 |",
    ]
    for name, kills, lost, wall, why in rows:
        ratio = wall / plain_wall
        lines.append(f"| {name} | {kills} | {lost}/{trials} | {wall:.1f} | {ratio:.2f} |")
        lines.extend(f"  lost: {w}" for w in why)
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text + "\n\n")


if __name__ == "__main__":
    main()
