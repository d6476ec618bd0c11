"""rlwb DDPG against Stable-Baselines3 DDPG: same hyperparameters, tasks, budgets, seeds.

Both use SB3's MuJoCo DDPG setting (rl-zoo3): actor and critic 400-300 ReLU, the action at the
critic's input, Adam lr 1e-3, batch 256, tau 0.005, gamma 0.99, Gaussian noise 0.1, one
gradient update per environment step, uniform random actions for ``learning_starts`` steps,
and the same torch thread count. rlwb trains through ``rlwb.train`` on its ``mujoco``
backend; SB3 on ``gymnasium.make`` (how its users run it). Each run is a process of its own
(:mod:`rlwb.apart`) and the two alternate (which goes first changes every seed), so that a
change in machine load hits both. Both final policies are evaluated the same way:
deterministic actions, ``--eval-episodes`` episodes on the same rlwb engine and seeds.

Remaining differences: SB3 initialises layers with PyTorch's default (Kaiming-uniform)
instead of the paper's fan-in/3e-3 init; SB3 counts its wall clock inside ``learn`` and
rlwb inside the runner's loop (both exclude building the environments and the final
evaluation, both include the random warm-up steps).

    python benchmarks/ddpg_vs_sb3.py --tasks InvertedPendulum-v5 HalfCheetah-v5 \
        --steps 10000 --learning-starts 1000 --seeds 0 1 2
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field

import torch
import tyro

from rlwb import make_engine
from rlwb.agent import Agent
from rlwb.agents.ddpg import DDPG, DDPGConfig
from rlwb.apart import Contender, run_apart
from rlwb.train import TrainConfig, train


@dataclass
class Args:
    """Benchmark budget and setting."""

    tasks: list[str] = field(default_factory=lambda: ["InvertedPendulum-v5", "HalfCheetah-v5"])
    steps: int = 1_000_000
    """Environment steps per run (rl-zoo3: 1M)."""
    learning_starts: int = 10_000
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    num_envs: int = 1
    """Parallel environments for both (one gradient update per environment step)."""
    eval_episodes: int = 10
    threads: int = 1
    """torch threads for both."""
    backend: str = "mujoco"
    """rlwb engine backend."""
    compile: bool = False
    """torch.compile rlwb's networks."""
    skip_sb3: bool = False


@dataclass
class Run:
    impl: str
    task: str
    seed: int
    steps: int
    seconds: float
    eval_mean: float


def agent_config(args: Args) -> DDPGConfig:
    return DDPGConfig.modern(torch_threads=args.threads, compile=args.compile)


def run_rlwb(args: Args, task: str, seed: int) -> Run:
    cfg = agent_config(args)
    with tempfile.TemporaryDirectory() as tmp:
        train_cfg = TrainConfig(
            task=task,
            backend=args.backend,
            device="cpu",
            num_envs=args.num_envs,
            seed=seed,
            total_steps=args.steps,
            learning_starts=args.learning_starts,
            updates_per_step=1.0,
            eval_every=0,
            checkpoint_every=0,
            eval_episodes=args.eval_episodes,
            log_every=max(args.steps // 10, 1),
            run_dir=tmp,
            progress=False,
        )
        result = train(DDPG, cfg, train_cfg)
    return Run("rlwb", task, seed, result.env_steps, result.wall_time, result.eval_mean)


def run_sb3(args: Args, task: str, seed: int) -> Run:
    import gymnasium as gym
    import numpy as np
    from stable_baselines3 import DDPG as SB3DDPG
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import NormalActionNoise

    torch.set_num_threads(args.threads)
    env = make_vec_env(task, n_envs=args.num_envs, seed=seed)
    act_dim = int(np.prod(gym.make(task).action_space.shape))
    cfg = agent_config(args)
    model = SB3DDPG(
        "MlpPolicy",
        env,
        learning_rate=cfg.critic_lr,
        buffer_size=cfg.buffer_size,
        learning_starts=args.learning_starts,
        batch_size=cfg.batch_size,
        tau=cfg.tau,
        gamma=cfg.gamma,
        train_freq=1,
        gradient_steps=args.num_envs,
        action_noise=NormalActionNoise(np.zeros(act_dim), cfg.noise_sigma * np.ones(act_dim)),
        policy_kwargs={"net_arch": list(cfg.hidden)},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps)
    seconds = time.perf_counter() - start
    return Run("sb3", task, seed, args.steps, seconds, evaluate_sb3(model, args, task, seed))


class SB3Policy(Agent):
    """An SB3 model's deterministic policy as an rlwb agent, so that rlwb's evaluation
    (``act_on``, the evaluation seeds) runs it exactly as it runs rlwb's own agents."""

    def __init__(self, model) -> None:  # noqa: ANN001 - an SB3 model
        self.model, self.config, self.spec = model, None, None
        self.device = torch.device("cpu")

    def act(self, obs: torch.Tensor, explore: bool = False) -> torch.Tensor:
        action, _ = self.model.predict(obs.cpu().numpy(), deterministic=True)
        return torch.as_tensor(action, dtype=torch.float32)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Nothing to restore: the SB3 model holds the weights."""


def evaluate_sb3(model, args: Args, task: str, seed: int) -> float:
    """SB3's deterministic policy on the rlwb engine and seeds that evaluate rlwb's runs."""
    from rlwb.evaluate import mean_std, run_evaluation
    from rlwb.train import EVAL_SEED_OFFSET

    eval_seed = seed + EVAL_SEED_OFFSET
    engine = make_engine(task, args.eval_episodes, backend=args.backend, seed=eval_seed)
    try:
        returns, _ = run_evaluation(SB3Policy(model), engine, eval_seed)
    finally:
        engine.close()
    return mean_std(returns)[0]


def summarise(runs: list[Run], args: Args) -> str:
    lines = [
        "| task | impl | env steps/s (mean over seeds) | speed ratio rlwb/sb3 | "
        f"final eval return (mean ± std over {len(args.seeds)} seeds) |",
        "|---|---|---|---|---|",
    ]
    for task in args.tasks:
        speed = {}
        for impl in ("rlwb", "sb3"):
            mine = [r for r in runs if r.task == task and r.impl == impl]
            if not mine:
                continue
            sps = statistics.mean(r.steps / r.seconds for r in mine)
            speed[impl] = sps
            rets = [r.eval_mean for r in mine]
            std = statistics.pstdev(rets) if len(rets) > 1 else 0.0
            ratio = f"{speed['rlwb'] / sps:.2f}" if impl == "sb3" and "rlwb" in speed else ""
            lines.append(
                f"| {task} | {impl} | {sps:.1f} | {ratio} | "
                f"{statistics.mean(rets):.1f} ± {std:.1f} |"
            )
    return "\n".join(lines)


def run_one(impl: str, args: dict, task: str, seed: int) -> dict:
    """One run (rlwb or sb3) in its own process, as a plain dict."""
    settings = Args(**args)
    torch.set_num_threads(settings.threads)
    run = (run_rlwb if impl == "rlwb" else run_sb3)(settings, task, seed)
    return dataclasses.asdict(run)


def main(argv: list[str] | None = None) -> str:
    args = tyro.cli(Args, args=argv, description=__doc__)
    here = str(pathlib.Path(__file__).resolve())
    impls = ["rlwb"] if args.skip_sb3 else ["rlwb", "sb3"]
    runs: list[Run] = []
    for index, (task, seed) in enumerate((t, s) for t in args.tasks for s in args.seeds):
        order = impls[index % len(impls) :] + impls[: index % len(impls)]
        contenders = [
            Contender(impl, f"{here}:run_one", {"impl": impl, "args": dataclasses.asdict(args),
                                                "task": task, "seed": seed})
            for impl in order
        ]  # fmt: skip
        for record in run_apart(contenders):
            if record.error is not None:
                print(f"{record.name} {task} seed {seed}: failed: {record.error}", flush=True)
                continue
            runs.append(Run(**record.value))
            print(record.value, flush=True)
    table = summarise(runs, args)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\n{platform.node()} {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load {load:.1f}, torch {torch.__version__}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(table)
    return table


if __name__ == "__main__":
    main()
