"""Success rate against env steps on the point-mass goal mazes and AntMaze_UMaze: GDG, GDG
without bridge points, rlwb DDPG+HER and Stable-Baselines3 DDPG + HerReplayBuffer.

    python benchmarks/gdg_bench.py --mazes open deceptive --seeds 0 1 2 --workers 2
    python benchmarks/gdg_bench.py --mazes antmaze --steps 15000 --evals 3   # gym backend
    python benchmarks/gdg_bench.py --agents gdg --bridge '{"training": true, "patience": 15,
        "start_threshold": 10, "stuck_radius": 0}'   # BridgeConfig overrides

Every run: 4 engine members, 1000 random steps, then half a gradient update per env step,
64-64 networks, batch 128, episodes that end on success, goals >= 2 cells from the start.
Evaluation: 50 deterministic episodes every ``--eval-every`` steps, success = the episode
reached its goal. On the deceptive maze training goals come from the ``g`` cell half of the
time (uniform over open cells otherwise) and evaluation uses the ``g`` cell only: the goal
behind the cup that traps greedy distance-following. AntMaze_UMaze-v5 (gymnasium-robotics,
``gym`` backend): the env's own goals and resets, 700-step episodes that end on success
(``continuing_task=False``), 3000 random steps (SB3's HER samples only after a whole
episode), 10 evaluation episodes. Results go to a JSON-lines file (one line per run,
written as runs finish) and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import torch

AGENTS = ("gdg", "gdg_no_bridges", "ddpg_her", "sb3_ddpg_her")
STEPS = {"open": 6_000, "umaze": 15_000, "deceptive": 30_000, "antmaze": 30_000}
HORIZON = {"open": 50, "umaze": 100, "deceptive": 100, "antmaze": 700}
MEMBERS, LEARNING_STARTS, EVAL_EPISODES = 4, 1_000, 50
ANT_EVAL_EPISODES, ANT_LEARNING_STARTS = 10, 3_000
"""AntMaze evaluations are 700-step MuJoCo episodes on the gym backend: fewer of them; the
random warm-up covers one whole episode per member (SB3's HER samples only after one)."""


ANT_BRIDGE = dict(start_threshold=40.0, patience=40, min_hop=25.0, max_hop=200.0, max_edge=40.0,
                  link_radius=2.0, link_window=80)  # fmt: skip
"""Bridge settings for the ant, untuned: the point-maze defaults (in steps) scaled up five
times for an agent that needs several times more steps per maze cell, and the observed
graph's radius to half of AntMaze's 4-unit cell."""


def warmup(maze: str) -> int:
    return ANT_LEARNING_STARTS if maze == "antmaze" else LEARNING_STARTS


def task_kwargs(maze: str, evaluation: bool) -> dict:
    if maze == "antmaze":  # Gymnasium-Robotics' own resets; the episode ends on success
        return {"continuing_task": False}
    kw = {
        "min_goal_distance": 2.0,
        "max_episode_steps": HORIZON[maze],
        "terminate_on_success": True,
    }
    if maze == "deceptive":
        kw["goal_cell_prob"] = 1.0 if evaluation else 0.5
    return kw


def task_id(maze: str) -> str:
    return {"open": "PointMaze-Open-Goal-v0", "umaze": "PointMaze-UMaze-Goal-v0",
            "deceptive": "PointMaze-Deceptive-Goal-v0",
            "antmaze": "AntMaze_UMaze-v5"}[maze]  # fmt: skip


def make_maze_engine(maze: str, members: int, seed: int, evaluation: bool):
    """The torch backend's point mazes; AntMaze on the gym backend (gymnasium-robotics)."""
    from rlwb.engine import make_engine

    backend = "gym" if maze == "antmaze" else "torch"
    return make_engine(task_id(maze), members, backend=backend, seed=seed,
                       **task_kwargs(maze, evaluation))  # fmt: skip


def success_rate(policy, maze: str, seed: int) -> float:
    episodes = ANT_EVAL_EPISODES if maze == "antmaze" else EVAL_EPISODES
    engine = make_maze_engine(maze, episodes, seed + 10_000, evaluation=True)
    obs = engine.reset(seed=seed + 10_000)
    success = torch.zeros(episodes, dtype=torch.bool)
    live = torch.ones(episodes, dtype=torch.bool)
    # Plain steps, first episode per member (the gym backend cannot restore AntMaze states,
    # which engine.rollout does at its end).
    with torch.no_grad():
        for _ in range(HORIZON[maze]):
            obs, _, term, _, info = engine.step(policy(obs))
            success |= live & term.cpu()
            live &= ~info["done"].cpu()
            if not live.any():
                break
    engine.close()
    return float(success.float().mean())


def run_rlwb(agent_name: str, maze: str, seed: int, steps: int, eval_every: int,
             bridge_kw: dict | None = None) -> list:  # fmt: skip
    from rlwb.agents.goal.bridges import BridgeConfig
    from rlwb.agents.goal.ddpg_her import DDPGHER, DDPGHERConfig
    from rlwb.agents.goal.gdg import GDG, GDGConfig
    from rlwb.stepping import training_steps

    torch.manual_seed(seed)
    engine = make_maze_engine(maze, MEMBERS, seed, evaluation=False)
    small = dict(hidden=(64, 64), batch_size=128, seed=seed, probe_every=0)
    if agent_name == "ddpg_her":
        agent = DDPGHER(DDPGHERConfig(**small), engine.spec, "cpu")
    else:
        base = ANT_BRIDGE if maze == "antmaze" else {}
        bridge = BridgeConfig(**{**base, **(bridge_kw or {})})
        agent = GDG(GDGConfig(bridges=agent_name == "gdg", bridge=bridge, **small), engine.spec,
                    "cpu")  # fmt: skip
    curve = []
    # the runner's loop: random actions before warmup, then half an update per env step
    for step in training_steps(agent, engine, steps, warmup(maze), updates_per_step=0.5,
                               seed=seed):  # fmt: skip
        if step % eval_every == 0:
            curve.append((step, success_rate(lambda o: agent.act(o), maze, seed)))
    return curve


def run_sb3(maze: str, seed: int, steps: int, eval_every: int) -> list:
    import numpy as np
    from stable_baselines3 import DDPG, HerReplayBuffer
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise

    from rlwb.engine.adapters import SB3GoalVecEnvView

    torch.set_num_threads(1)
    engine = make_maze_engine(maze, MEMBERS, seed, evaluation=False)
    env = SB3GoalVecEnvView(engine)
    act_dim = engine.spec.action_dim
    model = DDPG(
        "MultiInputPolicy", env, learning_rate=1e-3, buffer_size=1_000_000,
        learning_starts=warmup(maze), batch_size=128, tau=0.05, gamma=0.98, train_freq=1,
        gradient_steps=MEMBERS // 2, replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
        action_noise=NormalActionNoise(np.zeros(act_dim), 0.2 * np.ones(act_dim)),
        policy_kwargs={"net_arch": [64, 64]}, seed=seed, verbose=0,
    )  # fmt: skip
    curve: list = []
    slices = env.slices

    def policy(obs: torch.Tensor) -> torch.Tensor:
        split = {k: obs[:, a:b].numpy() for k, (a, b) in slices.items()}
        return torch.as_tensor(model.predict(split, deterministic=True)[0])

    class Evaluate(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every == 0:
                curve.append((self.num_timesteps, success_rate(policy, maze, seed)))
            return True

    model.learn(steps, callback=Evaluate())
    return curve


def one_run(args: tuple) -> dict:
    agent_name, maze, seed, steps, eval_every, bridge_kw = args
    torch.set_num_threads(1)
    start = time.perf_counter()
    if agent_name == "sb3_ddpg_her":
        curve = run_sb3(maze, seed, steps, eval_every)
    else:
        curve = run_rlwb(agent_name, maze, seed, steps, eval_every, bridge_kw)
    return {"agent": agent_name, "maze": maze, "seed": seed, "curve": curve, "bridge": bridge_kw,
            "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


def table(rows: list[dict]) -> str:
    """Mean (min-max) success over seeds at each evaluation step, per maze and agent."""
    lines = []
    for maze in dict.fromkeys(r["maze"] for r in rows):
        runs = [r for r in rows if r["maze"] == maze]
        steps = sorted({s for r in runs for s, _ in r["curve"]})
        lines.append(f"\n{maze}: success rate (mean over seeds, [min, max]) vs env steps")
        lines.append("| agent | seeds | " + " | ".join(f"{s:,}" for s in steps) + " |")
        lines.append("|---|---|" + "---|" * len(steps))
        for agent in AGENTS:
            mine = [dict(r["curve"]) for r in runs if r["agent"] == agent]
            if not mine:
                continue
            cells = []
            for s in steps:
                vals = [c[s] for c in mine if s in c]
                cells.append(f"{statistics.mean(vals):.2f} [{min(vals):.2f}, {max(vals):.2f}]"
                             if vals else "-")  # fmt: skip
            lines.append(f"| {agent} | {len(mine)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mazes", nargs="+", default=["open", "deceptive"], choices=list(STEPS))
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), choices=AGENTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="override every maze's budget")
    parser.add_argument("--evals", type=int, default=5, help="evaluations per run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="gdg_bench.jsonl")
    parser.add_argument(
        "--bridge",
        type=json.loads,
        default={},
        help="BridgeConfig overrides for gdg, JSON: '{\"training\": false}'",
    )
    args = parser.parse_args(argv)
    jobs = []
    for maze in args.mazes:
        steps = args.steps or STEPS[maze]
        every = max(MEMBERS, steps // args.evals // MEMBERS * MEMBERS)
        jobs += [(a, maze, s, steps, every, args.bridge) for s in args.seeds for a in args.agents]
    rows = []
    out = pathlib.Path(args.out)
    # a fresh process per run (max_tasks_per_child): rlwb and SB3 never share one
    with ProcessPoolExecutor(args.workers, max_tasks_per_child=1) as pool, out.open("a") as sink:
        for row in pool.map(one_run, jobs):
            rows.append(row)
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            print(f"{row['agent']} {row['maze']} seed {row['seed']}: {row['curve']} "
                  f"({row['seconds']} s)", file=sys.stderr, flush=True)  # fmt: skip
    print(table(rows))


if __name__ == "__main__":
    main()
