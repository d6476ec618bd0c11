"""Agents: each a plain class the runner (``rlwb.train``) drives."""

from rlwb.agents.ddpg import DDPG, DDPGConfig
from rlwb.agents.deep_ga import DeepGA, DeepGAConfig

__all__ = ["DDPG", "DDPGConfig", "DeepGA", "DeepGAConfig"]
