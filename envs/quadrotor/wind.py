"""Wind for the quadrotor: a constant mean wind plus gusts, as a pure function of the state.

Gusts are a sum of sinusoids per axis whose amplitudes follow the Dryden longitudinal
spectrum (MIL-F-8785C form) ``S(w) = sigma^2 (2 L / (pi V)) / (1 + (L w / V)^2)``::

    w(t) = w_mean + sum_k A_k sin(omega_k t + phi_{axis, k}),   A_k = sqrt(2 S(omega_k) d_omega_k)

with ``K`` log-spaced frequencies in ``[f_low, f_high]`` Hz, rescaled so the gust's standard
deviation per axis is exactly ``gust_intensity``. Why a sum of sines and not an OU/Dryden
filter driven by white noise: ``TorchTask.dynamics`` is a pure function of (state, action)
with no generator, so all randomness is drawn at reset (mean wind direction and the phases
``phi``) from the engine's generator and stored in the state; ``get_state``/``set_state``
then clone a member's wind exactly, and a planner with the true model sees the same gusts.

The wind acts through linear drag on the relative air velocity (``disturbance``):
``d = (drag / mass) (w - v)`` (m/s^2). The nominal model knows neither wind nor drag, so the
residual a learned model must explain depends on the velocity and on time.
"""

from __future__ import annotations

import math

import torch


def gust_table(
    components: int,
    f_low: float,
    f_high: float,
    intensity: float,
    scale_length: float,
    airspeed: float,
) -> tuple[list[float], list[float]]:
    """Angular frequencies and amplitudes (``components`` each) of the sum-of-sines gust."""
    if components == 0 or intensity == 0:
        return [], []
    freqs = [f_low * (f_high / f_low) ** (k / max(components - 1, 1)) for k in range(components)]
    omegas = [2 * math.pi * f for f in freqs]
    edges = (
        [omegas[0]]
        + [math.sqrt(a * b) for a, b in zip(omegas, omegas[1:], strict=False)]
        + [omegas[-1]]
    )
    widths = [max(hi - lo, 1e-6) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    spectrum = [
        (2 * scale_length / (math.pi * airspeed)) / (1 + (scale_length * w / airspeed) ** 2)
        for w in omegas
    ]
    amps = [math.sqrt(2 * s * dw) for s, dw in zip(spectrum, widths, strict=True)]
    # sin with a random phase has variance A^2 / 2: rescale to the requested intensity.
    std = math.sqrt(sum(a * a / 2 for a in amps))
    return omegas, [a * intensity / std for a in amps]


def wind_velocity(
    t: torch.Tensor,
    mean: torch.Tensor,
    phases: torch.Tensor,
    omegas: torch.Tensor,
    amps: torch.Tensor,
) -> torch.Tensor:
    """``[B, 3]`` wind velocity at times ``t[B]``; ``mean[B, 3]``, ``phases[B, 3, K]``."""
    if omegas.numel() == 0:
        return mean
    arg = omegas * t[:, None, None] + phases  # [B, 3, K]
    return mean + (amps * torch.sin(arg)).sum(-1)
