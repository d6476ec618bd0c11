"""TD-MPC: cost of one agent step (plan + update) and short learning runs, beside the
published numbers. Prints plans/s, updates/s and env steps/s.

Speed: the authors' configuration (``TDMPCConfig()``) on cheetah-run's shapes (17-dim
observation, 6-dim action; DMControl state), one member: milliseconds per ``act`` (6 MPPI
iterations of 537 candidates over the horizon 5 in latent space) and per ``update`` (a batch
of 512 windows of 5 steps, model and policy), then agent steps per second and env steps per
second at action repeat 4 (how the published curves count), and hours per 100k env steps.
The small preset is measured the same way. Learning: ``--learn-task`` trains that task with
``--learn-preset`` for ``--learn-steps`` agent steps per seed through ``rlwb.train``.

    python benchmarks/tdmpc_bench.py                              # speed only
    python benchmarks/tdmpc_bench.py --compile --no-small         # eager vs torch.compile
    python benchmarks/tdmpc_bench.py --learn-task Pendulum-v1 --learn-steps 3000 --seeds 0 1
    python benchmarks/tdmpc_bench.py --learn-task cheetah-run --learn-preset official \
        --learn-steps 25000 --learn-starts 5000 --learn-action-repeat 4   # 100k env steps
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from dataclasses import dataclass, field

import torch
import tyro

from rlwb.agents.tdmpc.agent import TDMPC, TDMPCConfig
from rlwb.engine.base import EngineSpec
from rlwb.train import TrainConfig, train

# Published TD-MPC means (DMControl, 5 seeds) at 100k / 500k env steps (Hansen et al. 2022).
PUBLISHED = {
    "cheetah-run": (603, 814),
    "walker-walk": (963, 977),
    "walker-run": (728, 820),
    "finger-spin": (949, 981),
    "quadruped-run": (341, 797),
}


@dataclass
class Args:
    """Budget of the benchmark."""

    device: str = "cpu"
    repeats: int = 5
    """Timed calls per measurement (after one warm-up call)."""
    action_repeat: int = 4
    """Action repeat for the env-step conversion (cheetah-run: 4)."""
    compile: bool = False
    """Also time the official configuration with ``compile=True`` (torch.compile)."""
    small: bool = True
    """Also time ``TDMPCConfig.small()``."""
    learn_task: str | None = None
    learn_preset: str = "small"
    """small or official."""
    learn_steps: int = 3_000
    learn_starts: int = 1_000
    learn_action_repeat: int = 1
    """Engine action repeat of the learning runs (the authors': 4 for cheetah-run)."""
    seeds: list[int] = field(default_factory=lambda: [0, 1])


def _spec(device: torch.device) -> EngineSpec:
    return EngineSpec(
        task_id="cheetah-run-shapes",
        num_envs=1,
        observation_shape=(17,),
        action_dim=6,
        action_low=-torch.ones(6),
        action_high=torch.ones(6),
        max_episode_steps=250,
        dt=0.04,
        device=device,
    )


def _timed(fn, repeats: int) -> tuple[float, float]:
    """Seconds per call: (wall, CPU of this process). With one torch thread the CPU time is
    what a quiet machine's wall time would be; on a shared machine the wall time is longer."""
    fn()  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats, (time.process_time() - cpu) / repeats


def speed(cfg: TDMPCConfig, args: Args) -> tuple[tuple[float, float], ...]:
    device = torch.device(args.device)
    agent = TDMPC(cfg, _spec(device), device)
    g = torch.Generator().manual_seed(0)
    for t in range(2 * cfg.batch_size):  # episodes of 250 steps
        agent.observe(
            torch.randn(1, 17, generator=g),
            torch.rand(1, 6, generator=g) * 2 - 1,
            torch.randn(1, generator=g),
            torch.randn(1, 17, generator=g),
            torch.zeros(1, dtype=torch.bool),
            torch.tensor([t % 250 == 249]),
        )
    agent.steps = cfg.schedule_steps  # full planning horizon
    obs = torch.randn(1, 17, generator=g)
    act = _timed(lambda: agent.act(obs, explore=True), args.repeats)
    upd = _timed(lambda: agent.update(1), args.repeats)
    return act, upd


def learn(args: Args) -> list[tuple[int, float, float]]:
    rows = []
    for seed in args.seeds:
        preset = TDMPCConfig.small if args.learn_preset == "small" else TDMPCConfig.official
        kwargs = {"action_repeat": args.learn_action_repeat} if args.learn_action_repeat > 1 else {}
        cfg = TrainConfig(
            task=args.learn_task,
            total_steps=args.learn_steps,
            learning_starts=args.learn_starts,
            seed=seed,
            eval_every=0,
            checkpoint_every=0,
            run_dir=tempfile.mkdtemp(prefix="tdmpc_bench_"),
            progress=False,
            task_kwargs=kwargs,
        )
        result = train(TDMPC, preset(seed=seed), cfg)
        rows.append((seed, result.eval_mean, result.wall_time))
    return rows


def main() -> None:
    args = tyro.cli(Args)
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores, torch {torch.__version__}, ", end="")
    print(f"agent torch threads {TDMPCConfig().torch_threads}, device {args.device}")
    k = args.action_repeat
    print(f"| config | clock | plan ms | update ms | plans/s | updates/s | agent steps/s | "
          f"env steps/s (x{k}) | h/100k |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    kw = dict(seed=0, seed_updates=False)  # time single updates, not the seed catch-up
    configs = [("official", TDMPCConfig(**kw))]
    if args.compile:  # only when asked: a TDMPCConfig without the field is an older rlwb
        configs.append(("official, compile", TDMPCConfig(**kw, compile=True)))
    if args.small:
        configs.append(("small", TDMPCConfig.small(**kw)))
    for name, cfg in configs:
        timings = speed(cfg, args)
        for clock, (act, upd) in zip(("wall", "CPU"), zip(*timings, strict=True), strict=True):
            sps = 1.0 / (act + upd)
            env_sps = sps * args.action_repeat
            cells = (act * 1e3, upd * 1e3, 1 / act, 1 / upd, sps, env_sps, 1e5 / env_sps / 3600)
            print(f"| {name} | {clock} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    if args.learn_task:
        print(f"\nlearning: {args.learn_task}, preset {args.learn_preset}, "
              f"{args.learn_steps} agent steps ({args.learn_starts} random)")  # fmt: skip
        print("| seed | final eval return | wall s |")
        print("|---|---|---|")
        for seed, ret, wall in learn(args):
            print(f"| {seed} | {ret:.1f} | {wall:.0f} |")
        if args.learn_task in PUBLISHED:
            at100k, at500k = PUBLISHED[args.learn_task]
            print(f"published TD-MPC: {at100k} at 100k env steps, {at500k} at 500k")


if __name__ == "__main__":
    main()
