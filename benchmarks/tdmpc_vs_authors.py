"""TD-MPC on CPU: rlwb's plan and update beside the authors' own code, same settings.

Give it a scratch copy of github.com/nicklashansen/tdmpc (used only for this measurement,
never copied into rlwb); without one it says so and exits 0:

    git clone https://github.com/nicklashansen/tdmpc /tmp/tdmpc_authors
    python benchmarks/tdmpc_vs_authors.py --authors /tmp/tdmpc_authors --rounds 3

Each contender runs in its own process, alternating (rlwb, authors, rlwb, authors, ...), so
neither warms the other's caches or threads and both see the same machine load; each process
times ``plan`` (one action: MPPI over the latent model) and ``update`` (one batch of the
model and the policy) after one warm-up call, on cheetah-run's sizes (17-dim observation,
6-dim action) with the authors' default settings (batch 512, horizon 5, 6 iterations of 512
samples + 25 policy trajectories, 64 elites, latent 50, MLPs 512, encoder 256) or a
domain's (``--domain humanoid``: 12 iterations, latent 100; ``dog``: 8 iterations, latent
100, batch 2048; each on its domain's sizes), at the full planning horizon. Wall and CPU
times per call, the medians over rounds, and the load average before each process are
printed.

The authors' code is written for CUDA (``.cuda()`` calls, ``torch.device('cuda')``): its
worker makes ``.cuda()`` return the tensor or module unchanged and sets the agent's device
to the CPU; nothing else of it is changed. ``--smoke`` shrinks every size for a test.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

EPISODE = 250  # agent steps per episode (1000 / 4)
# (plan, update) settings shared by both: the authors' cfgs/default.yaml and tasks/<domain>.yaml
# and the domain's observation / action sizes (cheetah-run for the default)
SETTINGS = {
    "default": dict(batch=512, iterations=6, samples=512, elites=64, latent=50, mlp=512, enc=256,
                    obs=17, act=6),
    "humanoid": dict(batch=512, iterations=12, samples=512, elites=64, latent=100, mlp=512,
                     enc=256, obs=67, act=21),
    "dog": dict(batch=2048, iterations=8, samples=512, elites=64, latent=100, mlp=512, enc=256,
                obs=223, act=38),
    "smoke": dict(batch=8, iterations=1, samples=16, elites=4, latent=4, mlp=8, enc=8, obs=5,
                  act=2),
}  # fmt: skip
HORIZON, MIXTURE, SCHEDULE_STEPS = 5, 0.05, 25_000


def _timed(fn: Any, repeats: int) -> tuple[float, float]:
    """Seconds per call after one warm-up call: (wall, CPU of this process)."""
    fn()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats, (time.process_time() - cpu) / repeats


def _rows(s: dict) -> int:
    """Transitions stored before timing: whole episodes, at least two batches' worth."""
    return EPISODE * -(-2 * s["batch"] // EPISODE)


def _transitions(s: dict, count: int) -> Any:
    """Seeded random (obs, action, reward) rows, the same for both contenders."""
    import torch

    g = torch.Generator().manual_seed(0)
    obs = torch.randn(count + 1, s["obs"], generator=g)
    return obs, torch.rand(count, s["act"], generator=g) * 2 - 1, torch.randn(count, generator=g)


def rlwb_worker(s: dict, repeats: int, threads: int) -> dict[str, float]:
    import torch

    from rlwb.agents.tdmpc.agent import TDMPC, TDMPCConfig
    from rlwb.engine.base import EngineSpec

    cfg = TDMPCConfig(
        iterations=s["iterations"], samples=s["samples"], elites=s["elites"], mixture=MIXTURE,
        horizon=HORIZON, batch_size=s["batch"], latent_dim=s["latent"], mlp_dim=s["mlp"],
        enc_dim=s["enc"], schedule_steps=SCHEDULE_STEPS, seed=0, seed_updates=False,
        torch_threads=threads,
    )  # fmt: skip
    spec = EngineSpec(
        task_id="dmc-shapes", num_envs=1, observation_shape=(s["obs"],), action_dim=s["act"],
        action_low=-torch.ones(s["act"]), action_high=torch.ones(s["act"]),
        max_episode_steps=EPISODE, dt=0.04,
        device=torch.device("cpu"),
    )  # fmt: skip
    agent = TDMPC(cfg, spec, torch.device("cpu"))
    count = _rows(s)
    obs, action, reward = _transitions(s, count)
    never = torch.zeros(1, dtype=torch.bool)
    for t in range(count):
        last = torch.tensor([t % EPISODE == EPISODE - 1])
        step = (obs[t : t + 1], action[t : t + 1], reward[t : t + 1], obs[t + 1 : t + 2])
        agent.observe(*step, never, last)
    agent.steps = SCHEDULE_STEPS  # full planning horizon
    now = obs[:1]
    plan = _timed(lambda: agent.act(now, explore=True), repeats)
    update = _timed(lambda: agent.update(1), repeats)
    return {"plan": plan[0], "plan_cpu": plan[1], "update": update[0], "update_cpu": update[1]}


def authors_worker(root: pathlib.Path, s: dict, repeats: int, threads: int) -> dict[str, float]:
    import torch

    torch.set_num_threads(threads)
    # their code moves everything to CUDA; on this CPU measurement that is a no-op
    torch.nn.Module.cuda = lambda self, device=None: self
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    sys.path.insert(0, str(root / "src"))
    from algorithm.helper import Episode, ReplayBuffer
    from algorithm.tdmpc import TDMPC as AuthorsTDMPC

    count = _rows(s)
    cfg = SimpleNamespace(
        modality="state", obs_shape=(s["obs"],), action_dim=s["act"], device="cpu",
        episode_length=EPISODE, train_steps=count, max_buffer_size=1_000_000,
        iterations=s["iterations"], num_samples=s["samples"], num_elites=s["elites"],
        mixture_coef=MIXTURE, min_std=0.05, temperature=0.5, momentum=0.1, horizon=HORIZON,
        batch_size=s["batch"], latent_dim=s["latent"], mlp_dim=s["mlp"], enc_dim=s["enc"],
        discount=0.99, reward_coef=0.5, value_coef=0.1, consistency_coef=2, rho=0.5, lr=1e-3,
        std_schedule=f"linear(0.5, 0.05, {SCHEDULE_STEPS})",
        horizon_schedule=f"linear(1, {HORIZON}, {SCHEDULE_STEPS})",
        per_alpha=0.6, per_beta=0.4, grad_clip_norm=10, seed_steps=5000, update_freq=2,
        tau=0.01,
    )  # fmt: skip
    torch.manual_seed(0)
    agent = AuthorsTDMPC(cfg)
    agent.device = torch.device("cpu")
    buffer = ReplayBuffer(cfg)
    obs, action, reward = _transitions(s, count)
    for start in range(0, count, EPISODE):
        episode = Episode(cfg, obs[start].numpy())
        for t in range(start, start + EPISODE):
            episode += (obs[t + 1].numpy(), action[t], float(reward[t]), t == start + EPISODE - 1)
        buffer += episode
    now = obs[0].numpy()
    plan = _timed(lambda: agent.plan(now, step=SCHEDULE_STEPS, t0=False), repeats)
    update = _timed(lambda: agent.update(buffer, SCHEDULE_STEPS), repeats)
    return {"plan": plan[0], "plan_cpu": plan[1], "update": update[0], "update_cpu": update[1]}


def _spawn(who: str, args: argparse.Namespace) -> dict[str, float]:
    """One contender's timings, measured in a fresh process."""
    load = os.getloadavg()[0]
    command = [sys.executable, __file__, "--worker", who, "--domain", args.domain,
               "--repeats", str(args.repeats), "--threads", str(args.threads)]  # fmt: skip
    if args.authors:
        command += ["--authors", str(args.authors)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{who} worker failed: {out.stderr.strip().splitlines()[-1:]}")
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load": load}


def compare(args: argparse.Namespace) -> list[str]:
    """Alternate the two contenders for ``args.rounds`` rounds; a markdown report."""
    rows: dict[str, list[dict[str, float]]] = {"rlwb": [], "authors": []}
    for _ in range(args.rounds):
        for who in rows:
            rows[who].append(_spawn(who, args))
    s = SETTINGS[args.domain]
    lines = [
        f"settings {args.domain}: {s}, horizon {HORIZON}, torch threads {args.threads}, "
        f"{args.repeats} timed calls per process, {args.rounds} rounds",
        "",
        "| round | contender | load (1 min) | plan ms | plan CPU ms | update ms | update CPU ms |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for i in range(args.rounds):
        for who in rows:
            r = rows[who][i]
            cells = [r["plan"], r["plan_cpu"], r["update"], r["update_cpu"]]
            lines.append(f"| {i + 1} | {who} | {r['load']:.2f} | "
                         + " | ".join(f"{1e3 * c:.1f}" for c in cells) + " |")  # fmt: skip
    lines += ["", "| median | rlwb ms | authors ms | authors / rlwb |", "|---|---:|---:|---:|"]
    for key in ("plan", "plan_cpu", "update", "update_cpu"):
        mine = statistics.median(r[key] for r in rows["rlwb"])
        theirs = statistics.median(r[key] for r in rows["authors"])
        lines.append(f"| {key} | {1e3 * mine:.1f} | {1e3 * theirs:.1f} | {theirs / mine:.2f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors", type=pathlib.Path, help="a copy of nicklashansen/tdmpc")
    parser.add_argument("--domain", choices=sorted(SETTINGS), default="default")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round")
    parser.add_argument("--worker", choices=("rlwb", "authors"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.domain, args.rounds, args.repeats = "smoke", 1, 1
    settings = SETTINGS[args.domain]
    if args.worker == "rlwb":
        print(json.dumps(rlwb_worker(settings, args.repeats, args.threads)))
        return 0
    if args.worker == "authors":
        print(json.dumps(authors_worker(args.authors, settings, args.repeats, args.threads)))
        return 0
    code = args.authors / "src" / "algorithm" / "tdmpc.py" if args.authors else None
    if code is None or not code.is_file():
        where = f"no {code}" if code else "no --authors PATH"
        print(f"skipped: {where} (a copy of github.com/nicklashansen/tdmpc is needed)")
        return 0
    print("\n".join(compare(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
