"""Deep GA on Humanoid-v5 (the paper's MuJoCo task), scaled to one CPU hour.

    python -m rlwb.experiments.deep_ga_humanoid           # or: rlwb train deep_ga_humanoid
    python -m rlwb.experiments.deep_ga_humanoid --agent.num-workers 8     # Ray actors
    python -m rlwb.experiments.deep_ga_humanoid --agent.population 12501 --agent.truncation 625 \
        --agent.episodes 5 --agent.elite-episodes 30                       # the paper's scale

The paper's Humanoid setting (DeepGAConfig.humanoid(): 256-256 tanh networks, sigma
0.00224, N = 12,501, T = 625, fitness over 5 episodes, elite from 10 candidates over 30
episodes) needs ~60M frames per generation and 1e9 frames in all: a cluster's job (the last
command above). The defaults here fit a one-hour run on a 2-core machine (a generation of
random networks is ~9k frames, since they fall within ~30 steps): N = 256 (the benchmark's
population) with the paper's 5% truncation (T = 13), the paper's sigma and network, fitness
over 1 episode (the paper's Atari choice: Humanoid's start noise is small) and the elite
from 10 candidates over 5 episodes instead of 30. Stop it after an hour with SIGINT (it
checkpoints; ``timeout -s INT 3600 ...``); the budget below is far beyond an hour.
benchmarks/deep_ga_humanoid_curve.py prints the curve of a run.
"""

from dataclasses import dataclass, field

from rlwb.agents.deep_ga import DeepGA, DeepGAConfig
from rlwb.train import TrainConfig, TrainResult, run_experiment


@dataclass
class Config:
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            task="Humanoid-v5",
            total_steps=50_000_000,
            eval_every=250_000,
            checkpoint_every=1,  # every generation
        )
    )
    agent: DeepGAConfig = field(
        default_factory=lambda: DeepGAConfig(
            **{
                **vars(DeepGAConfig.humanoid()),
                "population": 256,
                "truncation": 13,
                "episodes": 1,
                "elite_episodes": 5,
            }
        )
    )


def main(argv: list[str] | None = None) -> TrainResult:
    return run_experiment(DeepGA, Config, argv, __doc__)


if __name__ == "__main__":
    main()
