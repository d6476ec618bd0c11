"""Safe CEM-MPC tracking a figure-eight under wind gusts (Quadrotor-Figure8-v0).

    rlwb train safe_mpc_tracking                           # --agent.variant gp
    rlwb train safe_mpc_tracking --agent.variant nominal   # nominal, gp, gp_filter
    rlwb eval runs/safe_mpc_tracking-...                   # the final policy, same episodes

The GP-CEM (default variant here) learns the wind's push online and tracks about 5x closer
than the nominal CEM; there are no obstacles, so the filter (``--agent.variant gp_filter``)
only adds its tracking CLF, which tracks as well (benchmarks/safe_mpc_bench.py).
Nothing is trained across episodes (the GP adapts within each one): a run is two episodes
of control, an evaluation, and plots in <run>/plots/ and TensorBoard. Numbers for the three
variants: benchmarks/RESULTS.md (safe_mpc_bench).
"""

from dataclasses import dataclass, field

from rlwb.agents.safe_cem_mpc import SafeCEMMPCConfig
from rlwb.experiments._safe_mpc_report import run, train_config
from rlwb.train import TrainConfig, TrainResult


@dataclass
class Config:
    train: TrainConfig = field(default_factory=lambda: train_config("Quadrotor-Figure8-v0"))
    agent: SafeCEMMPCConfig = field(default_factory=lambda: SafeCEMMPCConfig(variant="gp"))


def main(argv: list[str] | None = None) -> TrainResult:
    return run(Config, argv, __doc__)


if __name__ == "__main__":
    main()
