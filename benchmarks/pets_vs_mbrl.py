"""rlwb PETS beside mbrl-lib's own PETS: return vs env steps and env steps/s, one machine.

    python benchmarks/pets_vs_mbrl.py --task InvertedPendulum-v5 --steps 3000 --seeds 0 1 2
    python benchmarks/pets_vs_mbrl.py --task HalfCheetah-v5 --steps 50000 --seeds 0 1 2
    python benchmarks/pets_vs_mbrl.py --smoke            # seconds: both sides run, tiny

Each (seed, contender) runs in its own process, the contenders alternating, so machine load
hits both alike. rlwb runs ``rlwb train pets_mujoco`` with the task's preset; mbrl-lib runs
``mbrl.algorithms.pets.train`` with its own configuration files for the task
(``pets_inv_pendulum`` / ``pets_halfcheetah``: ensemble, CEM, schedule) on Gymnasium's v4
of the task (mbrl 0.2.0 pins gymnasium 0.26.3, which has no v5: same model and dynamics;
v4's pendulum also pays 1 on its last step). mbrl-lib needs its own environment
(``--mbrl-python``; benchmarks/RESULTS.md, "mbrl-lib's own PETS at its own
configuration", says how to build it). Both train on CPU with one torch thread. The
curve compared is the training episodes' return against env steps (mbrl-lib's PETS logs
only those); env steps/s count everything (acting, planning, training), per second of wall
time and per second of the process's CPU time (what to compare on a loaded machine, where
wall time depends on the competition each run met). Results go to
``--out`` as JSON and a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

MBRL_CONF = {  # rlwb task -> (gymnasium v4 id, mbrl-lib override file, termination fn)
    "InvertedPendulum-v5": ("InvertedPendulum-v4", "pets_inv_pendulum", "inverted_pendulum"),
    "HalfCheetah-v5": ("HalfCheetah-v4", "pets_halfcheetah", "no_termination"),
    "Hopper-v5": ("Hopper-v4", "pets_hopper", "hopper"),
}


# ---------------------------------------------------------------------- workers
def _work_dir(keep: str):  # noqa: ANN202
    """``keep`` (created, left in place: curves readable while the run goes) or a temp dir."""
    if keep:
        pathlib.Path(keep).mkdir(parents=True, exist_ok=True)
        return contextlib.nullcontext(keep)
    return tempfile.TemporaryDirectory()


def rlwb_curve(run_dir: str | pathlib.Path) -> dict:
    from rlwb.plot import read_scalars

    x, y = read_scalars(pathlib.Path(run_dir), "charts/episodic_return")
    ex, ey = read_scalars(pathlib.Path(run_dir), "eval/return_mean")
    return {"steps": [int(v) for v in x], "returns": [float(v) for v in y],
            "eval_steps": [int(v) for v in ex], "eval": [float(v) for v in ey]}  # fmt: skip


def rlwb_worker(task: str, steps: int, seed: int, extra: list[str], keep: str = "") -> dict:
    from rlwb.experiments import pets_mujoco

    with _work_dir(keep) as tmp:
        start, cpu = time.perf_counter(), time.process_time()
        result = pets_mujoco.main(["--train.task", task, "--train.total-steps", str(steps),
                                   "--train.seed", str(seed), "--train.run-dir", tmp,
                                   "--train.no-progress", "--agent.torch-threads", "1",
                                   *extra])  # fmt: skip
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        return {**rlwb_curve(result.run_dir), "wall": wall, "cpu": cpu}


def mbrl_curve(work_dir: str | pathlib.Path, random_steps: int) -> dict:
    """mbrl-lib's training episodes (its ``results.csv``: env steps after its random ones)."""
    rows = (pathlib.Path(work_dir) / "results.csv").read_text().splitlines()[1:]
    pairs = [tuple(map(float, r.split(",")[:2])) for r in rows if r.strip()]
    return {"steps": [int(s) + random_steps for s, _ in pairs], "returns": [r for _, r in pairs],
            "eval_steps": [], "eval": []}  # fmt: skip


def mbrl_worker(task: str, steps: int, seed: int, extra: list[str], keep: str = "") -> dict:
    import numpy as np

    if not hasattr(np, "bool8"):  # gymnasium 0.26.3's env checker under numpy 2
        np.bool8 = np.bool_
    import gymnasium
    import mbrl
    import omegaconf
    import torch
    import yaml
    from mbrl.algorithms import pets
    from mbrl.env import termination_fns

    torch.set_num_threads(1)
    env_id, override, term = MBRL_CONF[task]
    conf = pathlib.Path(mbrl.__file__).parent / "examples" / "conf"
    load = omegaconf.OmegaConf.load
    cfg = omegaconf.OmegaConf.create({
        "seed": seed, "device": "cpu", "debug_mode": False, "log_frequency_agent": 1000,
        "algorithm": load(conf / "algorithm" / "pets.yaml"),
        "dynamics_model": load(conf / "dynamics_model" / "gaussian_mlp_ensemble.yaml"),
        "overrides": load(conf / "overrides" / f"{override}.yaml"),
        "action_optimizer": {  # mbrl-lib's conf/action_optimizer/cem.yaml (not in the wheel)
            "_target_": "mbrl.planning.CEMOptimizer",
            "num_iterations": "${overrides.cem_num_iters}",
            "elite_ratio": "${overrides.cem_elite_ratio}",
            "population_size": "${overrides.cem_population_size}",
            "alpha": "${overrides.cem_alpha}",
            "lower_bound": "???", "upper_bound": "???",
            "return_mean_elites": True, "device": "cpu",
            "clipped_normal": False,
        },
    })  # fmt: skip
    # hydra >= 1.1 instantiates nested configs first; mbrl 0.2.0 was written for 1.0's
    # flat instantiate (its pin, 1.0.3, does not run on Python 3.11)
    cfg.dynamics_model._recursive_ = False
    cfg.algorithm.agent._recursive_ = False
    cfg.overrides.env = f"gym___{env_id}"
    if override == "pets_inv_pendulum":  # "model_lr: 00143" loads as octal 99, and diverges
        cfg.overrides.model_lr = 0.00143
    cfg.overrides.pop("obs_process_fn", None)  # written for mbrl-lib's own cheetah obs
    cfg.overrides.pop("no_delta_list", None)
    for item in extra:  # key=value overrides, e.g. overrides.cem_population_size=100
        key, value = item.split("=", 1)
        omegaconf.OmegaConf.update(cfg, key, yaml.safe_load(value))
    omegaconf.OmegaConf.resolve(cfg)  # omegaconf 2.3 cannot set keys through interpolations
    # mbrl-lib's budget counts only the steps after its random ones: same total as rlwb
    random_steps = int(cfg.algorithm.initial_exploration_steps)
    cfg.overrides.num_steps = max(steps - random_steps, 1)
    np.random.seed(seed)
    torch.manual_seed(seed)
    env = gymnasium.make(env_id)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    with _work_dir(keep) as tmp:
        (pathlib.Path(tmp) / "random_steps").write_text(str(random_steps))
        start, cpu = time.perf_counter(), time.process_time()
        pets.train(env, getattr(termination_fns, term), None, cfg, silent=False, work_dir=tmp)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        return {**mbrl_curve(tmp, random_steps), "wall": wall, "cpu": cpu}


# ---------------------------------------------------------------------- driver
def _start(python: str, who: str, task: str, steps: int, seed: int, extra: list[str],
           keep: str) -> tuple[subprocess.Popen, str]:  # fmt: skip
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    cmd = [python, __file__, "--worker", who, "--task", task, "--steps", str(steps),
           "--seeds", str(seed), "--out", out, "--extra", json.dumps(extra)]  # fmt: skip
    if keep:
        cmd += ["--run-dir", str(pathlib.Path(keep) / f"{who}-seed{seed}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL), out


def _finish(proc: subprocess.Popen, out: str) -> dict:
    if proc.wait() != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args)
    data = json.loads(pathlib.Path(out).read_text())
    os.unlink(out)
    return data


def collect(run_dir: str) -> dict:
    """Curves of the runs under a ``--run-dir`` so far (finished or not, e.g. stopped at a
    deadline): ``{who: {seed: {steps, returns, ...}}}``."""
    results: dict = {}
    for sub in sorted(pathlib.Path(run_dir).glob("*-seed*")):
        who, seed = sub.name.rsplit("-seed", 1)
        if who == "rlwb":
            runs = sorted(p.parent for p in sub.rglob("events.out.tfevents.*"))
            data = rlwb_curve(runs[0]) if runs else None
        else:
            marker = sub / "random_steps"
            done = marker.is_file() and (sub / "results.csv").is_file()
            data = mbrl_curve(sub, int(marker.read_text())) if done else None
        if data is not None:
            results.setdefault(who, {})[int(seed)] = data
    return results


def _at(data: dict, budget: int) -> str:
    """Mean return of the training episodes that ended in the last fifth of ``budget``."""
    window = [r for s, r in zip(data["steps"], data["returns"], strict=True)
              if budget - budget // 5 < s <= budget]  # fmt: skip
    return f"{sum(window) / len(window):.0f}" if window else "-"


def table(results: dict, steps: int) -> str:
    marks = sorted({steps * k // 5 for k in range(1, 6)})
    lines = ["| contender | seed | " + " | ".join(f"{m:,}" for m in marks)
             + " | env steps/s | env steps per CPU-second |",
             "|---|---:|" + "---:|" * (len(marks) + 2)]  # fmt: skip
    for who, runs in results.items():
        for seed, data in runs.items():
            rates = [f"{steps / data[k]:.1f}" if k in data else "- (not finished)"
                     for k in ("wall", "cpu")]  # fmt: skip
            cells = " | ".join([_at(data, m) for m in marks] + rates)
            lines.append(f"| {who} | {seed} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="InvertedPendulum-v5", choices=sorted(MBRL_CONF))
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--contenders", nargs="+", default=["rlwb", "mbrl"])
    p.add_argument(
        "--mbrl-python",
        default=os.environ.get("RLWB_MBRL_PYTHON", ""),
        help="python of the venv holding mbrl-lib (its pins clash with rlwb's; default: "
        "$RLWB_MBRL_PYTHON)",
    )
    p.add_argument("--out", default="")
    p.add_argument("--smoke", action="store_true", help="tiny budgets: both sides run")
    p.add_argument("--rlwb-args", default="", help="extra rlwb options, one string")
    p.add_argument("--mbrl-args", default="", help="mbrl-lib key=value overrides, one string")
    p.add_argument(
        "--run-dir",
        default="",
        help="keep each run's files under DIR/WHO-seedS "
        "(curves readable while running; see --collect)",
    )
    p.add_argument(
        "--parallel",
        action="store_true",
        help="start every (seed, contender) process at once (learning curves on "
        "a deadline; wall-clock speeds then depend on each other: compare env steps per "
        "CPU-second)",
    )
    p.add_argument(
        "--collect",
        default="",
        metavar="DIR",
        help="print the table of the runs under a --run-dir so far, run nothing",
    )
    p.add_argument("--worker", choices=["rlwb", "mbrl"], help=argparse.SUPPRESS)
    p.add_argument("--extra", default="[]", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        fn = rlwb_worker if args.worker == "rlwb" else mbrl_worker
        data = fn(args.task, args.steps, args.seeds[0], json.loads(args.extra), args.run_dir)
        pathlib.Path(args.out).write_text(json.dumps(data))
        return data
    if args.collect:
        results = collect(args.collect)
        print(table(results, args.steps))
        return results
    extra = {"rlwb": args.rlwb_args.split(), "mbrl": args.mbrl_args.split()}
    if args.smoke:
        args.steps, args.seeds = 60, args.seeds[:1]
        extra["rlwb"] = ["--train.learning-starts", "20", "--agent.train-every", "20",
                         "--agent.train-steps", "3", "--agent.planner.samples", "8",
                         "--agent.planner.horizon", "4", "--agent.planner.elites", "2",
                         "--train.eval-horizon", "10"]  # fmt: skip
        extra["mbrl"] = ["overrides.trial_length=20", "overrides.freq_train_model=20",
                         "overrides.num_epochs_train_model=1", "overrides.planning_horizon=4",
                         "overrides.cem_population_size=8", "overrides.cem_num_iters=1",
                         "algorithm.initial_exploration_steps=20"]  # fmt: skip
    if "mbrl" in args.contenders and not pathlib.Path(args.mbrl_python or "/nonexistent").is_file():
        p.error(
            f"mbrl-lib's python {args.mbrl_python!r} not found: give --mbrl-python (a venv "
            "with mbrl installed) or --contenders rlwb"
        )
    pythons = {"rlwb": sys.executable, "mbrl": args.mbrl_python}
    results: dict = {who: {} for who in args.contenders}
    jobs = [(seed, who) for seed in args.seeds for who in args.contenders]  # alternating
    running = {}
    for seed, who in jobs:
        load = os.getloadavg()[0]
        running[seed, who] = load, _start(pythons[who], who, args.task, args.steps, seed,
                                          extra[who], args.run_dir)  # fmt: skip
        if args.parallel and (seed, who) != jobs[-1]:
            continue
        for (s_, w_), (load_, started) in running.items():
            results[w_][s_] = {**_finish(*started), "load_before": load_}
            done = results[w_][s_]
            print(f"{w_} seed {s_}: {args.steps / done['wall']:.1f} env steps/s, "
                  f"{args.steps / done['cpu']:.1f} per CPU-second (load {load_:.1f}, now "
                  f"{os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
        running = {}
    report = table(results, args.steps)
    print(report)
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
