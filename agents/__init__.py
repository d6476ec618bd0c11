"""Agents: each a plain class the runner (``rlwb.train``) drives."""

from rlwb.agents.ddpg import DDPG, DDPGConfig
from rlwb.agents.safe_cem_mpc import SafeCEMMPC, SafeCEMMPCConfig

__all__ = ["DDPG", "DDPGConfig", "SafeCEMMPC", "SafeCEMMPCConfig"]
