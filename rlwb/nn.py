"""Small network helpers shared by agents: MLP blocks, fan-in init, fused target updates,
fused Adam steps, CUDA-graph capture of a gradient step, and the observation encoders an
agent builds from its observation space (conv encoders for images, random-shift
augmentation)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from rlwb.errors import ConfigError


def fan_in_uniform_(layer: nn.Linear, bound: float | None = None) -> nn.Linear:
    """Initialise weight and bias from U[-b, b] with b = 1/sqrt(fan_in) unless ``bound``.

    This is the DDPG paper's init (section 7); ``bound=3e-3`` gives its final-layer init.
    """
    b = 1.0 / math.sqrt(layer.in_features) if bound is None else float(bound)
    with torch.no_grad():
        layer.weight.uniform_(-b, b)
        if layer.bias is not None:
            layer.bias.uniform_(-b, b)
    return layer


def mlp_block(
    in_dim: int, sizes: Sequence[int], batch_norm: bool = False, activation: type = nn.ReLU
) -> tuple[nn.Sequential, int]:
    """``Linear -> [BatchNorm] -> activation`` for each size; returns the block and its width."""
    layers: list[nn.Module] = []
    for size in sizes:
        layers.append(fan_in_uniform_(nn.Linear(in_dim, size)))
        if batch_norm:
            layers.append(nn.BatchNorm1d(size))
        layers.append(activation())
        in_dim = size
    return nn.Sequential(*layers), in_dim


def float_state(module: nn.Module) -> list[torch.Tensor]:
    """Parameters and floating-point buffers (e.g. batch-norm running statistics), in order."""
    params = list(module.parameters())
    buffers = [b for b in module.buffers() if b.is_floating_point()]
    return params + buffers


@torch.no_grad()
def soft_update_(
    target: Sequence[torch.Tensor], source: Sequence[torch.Tensor], tau: float
) -> None:
    """Polyak update ``target <- (1 - tau) target + tau source`` as one fused foreach op."""
    torch._foreach_lerp_(list(target), list(source), float(tau))


class FusedAdamStep:
    """Steps a ``torch.optim.Adam`` by calling its fused kernel directly.

    ``Adam.step`` regroups its tensors by device and dtype on every call, which costs about
    0.2 ms of Python per step: as much as the arithmetic of a small network's update. This
    binds the optimizer's own state tensors once (so its ``state_dict`` stays the standard
    one) and then does one ``_foreach_add_`` and one ``_fused_adam_`` per parameter group.
    Call :meth:`bind` again after ``optimizer.load_state_dict``. Falls back to
    ``optimizer.step()`` where the fused kernel is unavailable.
    """

    def __init__(self, optimizer: torch.optim.Adam) -> None:
        self.optimizer = optimizer
        self.fused = bool(optimizer.defaults.get("fused"))
        self.bind()

    def bind(self) -> None:
        self.groups: list[tuple[list[torch.Tensor], list, list, list, dict]] = []
        if not self.fused:
            return
        for group in self.optimizer.param_groups:
            params = list(group["params"])
            for p in params:
                state = self.optimizer.state[p]
                if not state:  # what Adam's first fused step would create
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            states = [self.optimizer.state[p] for p in params]
            beta1, beta2 = group["betas"]
            hyper = dict(
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
            )
            self.groups.append(
                (
                    params,
                    [s["exp_avg"] for s in states],
                    [s["exp_avg_sq"] for s in states],
                    [s["step"] for s in states],
                    hyper,
                )
            )

    def zero_grad(self) -> None:
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        if not self.fused:
            self.optimizer.step()
            return
        for params, exp_avgs, exp_avg_sqs, steps, hyper in self.groups:
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(
                params,
                [p.grad for p in params],
                exp_avgs,
                exp_avg_sqs,
                [],
                steps,
                amsgrad=False,
                maximize=False,
                grad_scale=None,
                found_inf=None,
                **hyper,
            )


def fused_adam_available(device: torch.device) -> bool:
    """Fused Adam exists on CUDA, and on CPU in recent torch; probe once per device type."""
    if device.type not in _FUSED_ADAM:
        try:  # the kernel itself: Optimizer.step's first call imports torch._dynamo (seconds)
            p = torch.zeros(1, device=device)
            step = torch.zeros((), device=device)
            torch._fused_adam_(
                [p], [p.clone()], [p.clone()], [p.clone()], [], [step],
                lr=1e-3, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8,
                amsgrad=False, maximize=False,
            )  # fmt: skip
            _FUSED_ADAM[device.type] = True
        except (RuntimeError, ValueError, AttributeError):
            _FUSED_ADAM[device.type] = False
    return _FUSED_ADAM[device.type]


_FUSED_ADAM: dict[str, bool] = {}


class CudaGraphStep:
    """Runs a gradient step eagerly a few times (on a side stream), then captures it once
    as a CUDA graph and afterwards only copies the batch in and replays.

    Correct because the step reads nothing but its tensor arguments and module/optimizer
    state that lives at fixed addresses (Adam must be ``capturable``). CUDA only.
    """

    warmup = 3

    def __init__(self, fn: Callable[..., tuple[torch.Tensor, ...]]) -> None:
        self.fn = fn
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.inputs: tuple[torch.Tensor, ...] = ()
        self.outputs: tuple[torch.Tensor, ...] = ()

    def __call__(self, *batch: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.graph is None and self.calls < self.warmup:
            self.calls += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.fn(*batch)
            torch.cuda.current_stream().wait_stream(side)
            return out
        if self.graph is None:
            self.inputs = tuple(t.clone() for t in batch)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.outputs = self.fn(*self.inputs)
        for static, value in zip(self.inputs, batch, strict=True):
            static.copy_(value)
        self.graph.replay()
        return tuple(t.clone() for t in self.outputs)


# ====================================================================== image observations
def is_image(shape: Sequence[int]) -> bool:
    """An observation space of images ``(C, H, W)`` (pixel engines), not a flat vector."""
    return len(shape) == 3


@dataclass(frozen=True)
class ConvSpec:
    """A stack of ``Conv2d -> ReLU`` layers (no padding) over uint8 images scaled to [0, 1],
    flattened, and a final ``Linear`` to ``out_dim`` unless it is 0."""

    channels: tuple[int, ...]
    kernels: tuple[int, ...]
    strides: tuple[int, ...]
    out_dim: int = 0

    def __post_init__(self) -> None:
        if not len(self.channels) == len(self.kernels) == len(self.strides) >= 1:
            raise ConfigError(
                f"conv layers need as many channels, kernels and strides (>= 1), got "
                f"{self.channels}, {self.kernels}, {self.strides}"
            )


class ConvEncoder(nn.Module):
    """uint8 images ``[..., C, H, W]`` -> features ``[..., out_dim]`` (see :class:`ConvSpec`).
    Any leading dimensions: a batch of windows ``[B, T, C, H, W]`` is encoded in one pass."""

    def __init__(self, image_shape: Sequence[int], spec: ConvSpec) -> None:
        super().__init__()
        c, h, w = (int(v) for v in image_shape)
        layers: list[nn.Module] = []
        for out, kernel, stride in zip(spec.channels, spec.kernels, spec.strides, strict=True):
            layers += [nn.Conv2d(c, out, kernel, stride=stride), nn.ReLU()]
            c = out
            h, w = (h - kernel) // stride + 1, (w - kernel) // stride + 1
            if h < 1 or w < 1:
                raise ConfigError(
                    f"images of {tuple(image_shape)} are too small for conv layers {spec}"
                )
        self.image_shape = tuple(int(v) for v in image_shape)
        self.conv = nn.Sequential(*layers, nn.Flatten())
        self.conv_dim = c * h * w
        self.head = nn.Linear(self.conv_dim, spec.out_dim) if spec.out_dim else nn.Identity()
        self.out_dim = spec.out_dim or self.conv_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        lead = images.shape[:-3]
        x = images.reshape(-1, *images.shape[-3:])
        # uint8 frames: scaled in place in their new float copy (a fifth of an update's time)
        x = x.float().mul_(1 / 255.0) if x.dtype == torch.uint8 else x / 255.0
        return self.head(self.conv(x)).reshape(*lead, self.out_dim)


def encoder_for(
    shape: Sequence[int], image: ConvSpec, flat: Callable[[int], nn.Module] | None = None
) -> tuple[nn.Module, int]:
    """An agent's observation encoder for its observation space, and its output width: a
    :class:`ConvEncoder` of ``image`` when the space is an image, else ``flat(obs_dim)``
    (``None``: the observation itself, ``nn.Identity``). ``flat``'s module must say its
    width as ``out_features`` or ``out_dim``, or end in a ``Linear``."""
    if is_image(shape):
        encoder = ConvEncoder(shape, image)
        return encoder, encoder.out_dim
    if len(shape) != 1:
        raise ConfigError(f"observations of shape {tuple(shape)} are neither flat nor images")
    if flat is None:
        return nn.Identity(), int(shape[0])
    module = flat(int(shape[0]))
    width = getattr(module, "out_dim", None) or getattr(module, "out_features", None)
    if width is None:
        width = [m for m in module.modules() if isinstance(m, nn.Linear)][-1].out_features
    return module, int(width)


class RandomShift(nn.Module):
    """DrQ's random-shift augmentation (Kostrikov et al. 2020; TD-MPC's pixel setting):
    each image padded by ``pad`` pixels that repeat its border, then cropped back to its
    size at an offset drawn uniformly from ``[0, 2 pad]`` in each axis, i.e. shifted by at
    most ``pad``. Done as one gather of clamped indices (no padded copy, uint8 stays uint8);
    any leading dimensions, an independent shift per image, drawn from ``generator``."""

    def __init__(self, pad: int) -> None:
        super().__init__()
        if pad < 0:
            raise ConfigError(f"random shift pad must be >= 0, got {pad}")
        self.pad = int(pad)

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if self.pad == 0:
            return images
        *lead, c, h, w = images.shape
        x = images.reshape(-1, c, h * w)
        n, dev = x.shape[0], images.device
        shift = torch.randint(0, 2 * self.pad + 1, (n, 2), generator=generator, device=dev)
        shift = shift - self.pad
        rows = (torch.arange(h, device=dev) + shift[:, :1]).clamp_(0, h - 1)  # [n, h]
        cols = (torch.arange(w, device=dev) + shift[:, 1:]).clamp_(0, w - 1)  # [n, w]
        index = (rows[:, :, None] * w + cols[:, None, :]).reshape(n, 1, h * w)
        return x.gather(2, index.expand(n, c, h * w)).reshape(*lead, c, h, w)
