"""Deep GA on Humanoid-v5 (the paper's MuJoCo task): a small run here, the paper's on Ray.

    rlwb train deep_ga_humanoid                            # N = 256, 3M frames: see below
    rlwb train deep_ga_humanoid --agent.num-workers 4      # the same numbers, on 4 Ray actors
    rlwb train deep_ga_humanoid --agent.obs-norm False     # raw observations

The default is a small run for a workstation: N = 256 with the paper's 5% truncation
(T = 13), the paper's sigma (0.00224) and 256-256 tanh network, fitness over 1 episode (the
paper's Atari choice; Humanoid's start noise is small), the elite from 10 candidates over 5
episodes instead of 30, observations normalised as in the authors' code (see
rlwb.agents.deep_ga.agent). Its budget, 3M frames, is about an hour at the 800-950 frames/s its
first generations ran at on 2 shared cores; the run checkpoints every generation and stops
cleanly on SIGINT/SIGTERM, so ``--train.total-steps`` or ``timeout -s INT`` can cut it
anywhere.
benchmarks/deep_ga_humanoid_curve.py prints the curve of a run.

The paper's scale (DeepGAConfig.humanoid(): N = 12,501, T = 625, sigma = 0.00224, fitness
over 5 episodes, elite from 10 candidates over 30 episodes, 256-256 tanh networks) is a Ray
cluster's job: a generation is up to 62,805 episodes (62.8M frames if none falls). Start
Ray on every machine (the same rlwb version installed on each), then train on the head
node, whose ``ray.init()`` finds the cluster ``ray start`` made there (or set
``RAY_ADDRESS``):

    ray start --head --port 6379                           # on the head node
    ray start --address HEAD_IP:6379                       # on every other node
    rlwb train deep_ga_humanoid --agent.population 12501 --agent.truncation 625 \
        --agent.episodes 5 --agent.elite-episodes 30 --agent.chunk 16 \
        --agent.num-workers 720 --train.total-steps 1000000000

``--agent.chunk 16`` makes 782 chunks of children per generation, enough for 720 actors;
the results do not depend on ``num-workers`` or ``chunk``'s split among actors (a one-process
run with the same ``chunk`` gives the same numbers). The 1B-frame budget is the paper's
Atari one, as an example: the paper's Humanoid budget is not in our references.
"""

from dataclasses import dataclass, field

from rlwb.agents.deep_ga.agent import DeepGA, DeepGAConfig
from rlwb.train import TrainConfig, TrainResult, run_experiment


@dataclass
class Config:
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            task="Humanoid-v5",
            total_steps=3_000_000,
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
