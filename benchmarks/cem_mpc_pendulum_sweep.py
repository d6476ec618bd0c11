"""How long true-model MPC keeps InvertedPendulum-v5 up: B members (each its own reset
state) plan in one batched call per control step; prints the steps each member survived and
how far the cart went (the rail is at |x| = 1).

    python benchmarks/cem_mpc_pendulum_sweep.py --members 5 --seed 0 \
        --planner.method cem --planner.samples 60 --planner.horizon 40 \
        --planner.iterations 1 --planner.elites 30 --planner.init-std 0.3
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import tyro

from rlwb import make_engine
from rlwb.agent import act_on
from rlwb.agents.cem_mpc import CEMMPC, CEMMPCConfig
from rlwb.planners.sampling import SamplingConfig


@dataclass
class Args:
    planner: SamplingConfig = field(default_factory=SamplingConfig)
    members: int = 5
    seed: int = 0
    steps: int = 1000


def main(args: Args) -> None:
    torch.set_num_threads(1)
    engine = make_engine("InvertedPendulum-v5", args.members, backend="mujoco", seed=args.seed)
    agent = CEMMPC(CEMMPCConfig(planner=args.planner, seed=args.seed), engine.spec, "cpu")
    obs, start = engine.reset(seed=args.seed), time.perf_counter()
    survived = torch.full((args.members,), args.steps)
    reach = torch.zeros(args.members)
    for t in range(args.steps):
        obs, _, terminated, _, _ = engine.step(act_on(agent, engine, obs))
        reach = torch.maximum(reach, obs[:, 0].abs())
        survived[terminated & (survived == args.steps)] = t + 1
        if bool((survived < args.steps).all()):
            break
    wall = time.perf_counter() - start
    reach = [round(x, 2) for x in reach.tolist()]
    print(f"{args.planner}\nsurvived {survived.tolist()}, max |x| {reach}, {wall:.0f} s wall")


if __name__ == "__main__":
    main(tyro.cli(Args))
