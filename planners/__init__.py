"""Planners and the models they plan with.

``models``: the one-method model protocol and the true-dynamics ``EngineModel``;
``sampling``: CEM / MPPI / iCEM / random shooting over plans ``[B, N, H, A]``.
"""

from rlwb.planners.models import EngineModel, Model
from rlwb.planners.sampling import SamplingConfig, SamplingPlanner

__all__ = ["EngineModel", "Model", "SamplingConfig", "SamplingPlanner"]
