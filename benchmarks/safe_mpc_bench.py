"""Safe CEM-MPC: nominal CEM vs GP-CEM vs GP-CEM + CLF/CBF filter, on both quadrotor tasks.

For each task (tracking: Quadrotor-Figure8-v0; obstacles: Quadrotor-Obstacles-v0) and each
variant (the filter with its CLF on, the default, and off: ``clf_weight = 0``),
``--episodes`` seeded episodes run as one batch (one engine member each, the same wind draws
for every variant) with the agent's default settings, and the table reports tracking RMSE
(m), minimum clearance to an obstacle (m), safety violations (episodes with a collision /
collision steps), filter intervention rate and control time per step (batched over the
episodes; ms, and relative to the nominal CEM in the same run).

    python benchmarks/safe_mpc_bench.py                     # 10 episodes x 160 steps
    python benchmarks/safe_mpc_bench.py --episodes 20 --steps 200
"""

from __future__ import annotations

import argparse
import copy

import torch

from rlwb import make_engine
from rlwb.agents.safe_cem_mpc import SafeCEMMPC, SafeCEMMPCConfig
from rlwb.planners.safety import SafetyFilterConfig
from rlwb.safe_mpc_report import closed_loop

TASKS = {"tracking": "Quadrotor-Figure8-v0", "obstacles": "Quadrotor-Obstacles-v0"}
VARIANTS = {
    "nominal": SafeCEMMPCConfig(variant="nominal"),
    "gp": SafeCEMMPCConfig(variant="gp"),
    "gp_filter (CBF only)": SafeCEMMPCConfig(
        variant="gp_filter", safety=SafetyFilterConfig(clf_weight=0.0)
    ),
    "gp_filter (CLF + CBF)": SafeCEMMPCConfig(variant="gp_filter"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(
        f"{args.episodes} episodes x {args.steps} steps, seed {args.seed}, torch "
        f"{torch.__version__}\n"
        "| task | variant | tracking RMSE (m) | min clearance (m) | collided episodes | "
        "collision steps | interventions | ms/step | time vs nominal |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    for name, task in TASKS.items():
        base = None
        for variant, config in VARIANTS.items():
            spec = make_engine(task, args.episodes, backend="torch").spec
            agent = SafeCEMMPC(copy.deepcopy(config), spec, torch.device("cpu"))
            s = closed_loop(agent, task, args.episodes, args.seed, horizon=args.steps).summary()
            base = base or s["ms_per_step"]
            clearance = f"{s['min_clearance']:.3f}" if name == "obstacles" else "-"
            print(
                f"| {name} | {variant} | {s['tracking_rmse']:.3f} | {clearance} | "
                f"{s['collided_episodes']}/{args.episodes} | {s['collision_steps']} | "
                f"{s['intervention_rate']:.1%} | {s['ms_per_step']:.1f} | "
                f"{s['ms_per_step'] / base:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
