"""Agents: each a plain class the runner (``rlwb.train``) drives."""

from rlwb.agents.ddpg import DDPG, DDPGConfig

__all__ = ["DDPG", "DDPGConfig"]
