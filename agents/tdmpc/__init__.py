"""TD-MPC (Hansen et al. 2022): the agent and its task-oriented latent dynamics model (TOLD)."""

from rlwb.agents.tdmpc.agent import TDMPC, TDMPCConfig

__all__ = ["TDMPC", "TDMPCConfig"]
