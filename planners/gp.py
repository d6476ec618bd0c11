"""Incremental Gaussian processes on a sliding window, one independent GP per batch member.

Why this and not gpytorch: the safe CEM-MPC needs, for each of B engine members, a GP on its
own last W transitions (each member flies its own wind), updated after every env step and
queried for B x N x H points per plan, with fixed hyperparameters. That is ~100 lines of
batched torch (one ``[B, W, W]`` Cholesky per update); gpytorch's exact GP refits from
scratch or grows its data without bound through fantasy updates, and its sparse variational
models need an optimiser loop per update.

Model, per member and output axis (outputs share the kernel and the inputs)::

    y = m + f(x) + eps,   f ~ GP(0, s^2 exp(-|(x - x') / l|^2 / 2)),   eps ~ N(0, n^2)

on the last ``window`` points (a ring buffer: a new point overwrites the oldest, so the cost
of an update is bounded, O(W^3) for the Cholesky plus O(W^2 d) for the kernel, and old
points are forgotten, which lets the GP follow slowly varying wind). ``m`` is the window's
mean of ``y`` when ``constant_mean`` (empirical Bayes; its own uncertainty is not added to
the variance) else 0. Empty slots are decoupled from the data (unit diagonal, zero
covariance, zero target), so the posterior is the exact GP on the valid points. The kernel
matrix is rebuilt and refactorised in one batched call per update: for W <= 128 one LAPACK
call is cheaper than the column-by-column rank-one downdate a cached factor would need
(W Python-level steps). ``predict`` returns the latent ``f``'s variance (no noise term).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlwb.errors import ConfigError


@dataclass
class GPConfig:
    """Hyperparameters of :class:`SlidingWindowGP` (fixed, not fitted online)."""

    window: int = 60
    """Points kept per member (the last ``window`` transitions)."""
    lengthscales: tuple[float, ...] = (2.0, 2.0, 2.0, 1.0)
    """RBF length scales per input dimension (one value: shared by all)."""
    signal_std: float = 1.0
    """Prior standard deviation of f (same units as the targets)."""
    noise_std: float = 0.05
    """Observation noise standard deviation."""
    constant_mean: bool = True
    """Prior mean = the window's mean target (else zero)."""

    def __post_init__(self) -> None:
        if isinstance(self.lengthscales, int | float):
            self.lengthscales = (float(self.lengthscales),)
        self.lengthscales = tuple(float(x) for x in self.lengthscales)
        if self.window < 1:
            raise ConfigError(f"GPConfig.window must be >= 1, got {self.window!r}")
        if not self.lengthscales or min(self.lengthscales) <= 0:
            raise ConfigError(f"GPConfig.lengthscales must be positive, got {self.lengthscales!r}")
        if self.signal_std <= 0 or self.noise_std <= 0:
            raise ConfigError("GPConfig.signal_std and noise_std must be positive")


class SlidingWindowGP:
    """B independent GPs ``R^in_dim -> R^out_dim`` on sliding windows (module docstring)."""

    def __init__(
        self,
        config: GPConfig,
        batch: int,
        in_dim: int,
        out_dim: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        ls = config.lengthscales
        if len(ls) not in (1, in_dim):
            raise ConfigError(
                f"GPConfig.lengthscales has {len(ls)} entries; the GP has {in_dim} inputs"
            )
        self.config, self.batch, self.in_dim, self.out_dim = config, batch, in_dim, out_dim
        self.device, self.dtype = torch.device(device), dtype
        opts = dict(device=self.device, dtype=dtype)
        self.inv_ls = 1.0 / torch.tensor(ls * (in_dim if len(ls) == 1 else 1), **opts)
        w = config.window
        self.x = torch.zeros(batch, w, in_dim, **opts)
        self.y = torch.zeros(batch, w, out_dim, **opts)
        self.valid = torch.zeros(batch, w, dtype=torch.bool, device=self.device)
        self.ptr = torch.zeros(batch, dtype=torch.int64, device=self.device)
        self._refactor()

    # ---------------------------------------------------------------- kernel algebra
    def kernel(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``[B, n, m]`` RBF kernel between ``a[B, n, d]`` and ``b[B, m, d]``."""
        d2 = torch.cdist(a * self.inv_ls, b * self.inv_ls).square()
        return self.config.signal_std**2 * torch.exp(-0.5 * d2)

    def _refactor(self) -> None:
        """Cholesky factor and weights of the current windows (one batched call)."""
        valid = self.valid.to(self.dtype)
        pair = valid[:, :, None] * valid[:, None, :]
        k = self.kernel(self.x, self.x) * pair
        diag = valid * self.config.noise_std**2 + (1 - valid)  # empty slots: unit, decoupled
        k = k + torch.diag_embed(diag)
        self.chol = torch.linalg.cholesky(k)
        count = valid.sum(1, keepdim=True).clamp_min(1)
        if self.config.constant_mean:
            self.mean = (self.y * valid[..., None]).sum(1) / count  # [B, D]
        else:
            self.mean = torch.zeros(self.batch, self.out_dim, device=self.device, dtype=self.dtype)
        target = (self.y - self.mean[:, None]) * valid[..., None]
        self.alpha = torch.cholesky_solve(target, self.chol)  # [B, W, D]; 0 on empty slots
        # Cached for predict: scaled inputs, half their squared norms, weights times s^2.
        self._xs = self.x * self.inv_ls
        self._half_sq = 0.5 * self._xs.square().sum(-1)
        self._weights = self.config.signal_std**2 * self.alpha

    # ---------------------------------------------------------------- public API
    def add(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Append one point ``x[B, in]``, ``y[B, out]`` per member where ``mask[B]``; the
        oldest point of a full window is dropped."""
        if x.shape != (self.batch, self.in_dim) or y.shape != (self.batch, self.out_dim):
            raise ValueError(
                f"GP.add expects x [{self.batch}, {self.in_dim}] and y [{self.batch}, "
                f"{self.out_dim}], got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        if mask is None:
            mask = torch.ones(self.batch, dtype=torch.bool, device=self.device)
        slot = torch.nn.functional.one_hot(self.ptr, self.config.window).bool() & mask[:, None]
        self.x = torch.where(slot[..., None], x[:, None].to(self.dtype), self.x)
        self.y = torch.where(slot[..., None], y[:, None].to(self.dtype), self.y)
        self.valid = self.valid | slot
        self.ptr = torch.where(mask, (self.ptr + 1) % self.config.window, self.ptr)
        self._refactor()

    def reset(self, mask: torch.Tensor) -> None:
        """Forget every point of the members in ``mask[B]``."""
        self.valid = self.valid & ~mask[:, None]
        self.ptr = torch.where(mask, torch.zeros_like(self.ptr), self.ptr)
        self._refactor()

    def predict(
        self, x: torch.Tensor, variance: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Posterior mean ``[B, N, out]`` and latent variance ``[B, N]`` (None unless
        ``variance``) at ``x[B, N, in]``, each member on its own window."""
        # exp(-|a - b|^2 / 2) = exp(a.b - |b|^2 / 2 - |a|^2 / 2): two batched matmuls and one
        # exp (the exponent is <= 0, so it never overflows); 2x faster than cdist here.
        xs = x.to(self.dtype) * self.inv_ls
        logits = torch.baddbmm(-self._half_sq[:, None, :], xs, self._xs.transpose(1, 2))
        corr = torch.exp(logits - 0.5 * xs.square().sum(-1, keepdim=True))  # k / s^2
        mean = torch.baddbmm(self.mean[:, None], corr, self._weights)  # empty slots weigh 0
        if not variance:
            return mean, None
        ks = corr * (self.config.signal_std**2 * self.valid[:, None, :].to(self.dtype))
        v = torch.linalg.solve_triangular(self.chol, ks.transpose(1, 2), upper=False)
        var = (self.config.signal_std**2 - v.square().sum(1)).clamp_min(0.0)
        return mean, var

    @property
    def size(self) -> torch.Tensor:
        """``[B]`` number of points held per member."""
        return self.valid.sum(1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"x": self.x, "y": self.y, "valid": self.valid, "ptr": self.ptr}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for key in ("x", "y", "valid", "ptr"):
            value = state[key].to(self.device)
            if value.shape != getattr(self, key).shape:
                raise ValueError(f"GP state {key!r} has shape {tuple(value.shape)}")
            setattr(self, key, value.to(getattr(self, key).dtype))
        self._refactor()
