"""Deep GA (Such et al. 2017): the agent, its seed-list genome, population evaluation, novelty
search, observation normalisation and Ray shards, one module each."""

from rlwb.agents.deep_ga.agent import DeepGA, DeepGAConfig

__all__ = ["DeepGA", "DeepGAConfig"]
