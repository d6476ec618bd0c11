"""Safe learning-based CEM-MPC on the quadrotor: the agent (``agent``), its planning model,
nominal dynamics plus a GP residual (``residual``), and the quadrotor's CBF/CLF rows for the
safety filter (``constraints``)."""

from rlwb.agents.safe_cem_mpc.agent import SafeCEMMPC, SafeCEMMPCConfig

__all__ = ["SafeCEMMPC", "SafeCEMMPCConfig"]
