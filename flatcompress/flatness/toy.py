r"""A 2-D loss surface with a sharp and a flat minimum, for teaching what SAM optimizes.

The surface is one minus two Gaussian wells: a deep, narrow one and a slightly shallower, wide one,

$$L(w) = 1 - d_s\, e^{-\|w - c_s\|^2 / 2\sigma_s^2} - d_f\, e^{-\|w - c_f\|^2 / 2\sigma_f^2}.$$

SAM minimizes the worst loss in a ball of radius ρ (paper §2.1),

$$L^{\mathrm{SAM}}_\rho(w) = \max_{\|\epsilon\|_2 \le \rho} L(w + \epsilon),$$

which `worst_case` evaluates by brute force over the ball of radius ρ (exact enough in 2-D, and
independent of SAM's first-order approximation). `trajectory` runs any torch optimizer on L, optionally
with mini-batch noise: each step's loss is $L(w) + \xi^\top w$ with $\xi \sim \mathcal N(0, s^2 I)$ drawn once
per step (both of SAM's passes see the same batch), so its gradient is the full gradient plus zero-mean noise.
`basin` says which minimum a point drains to under plain gradient descent.

Why noisy SAM leaves the sharp well where gradient descent stays, and where noiseless SAM stalls: the
Train flat chapter.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

__all__ = ["TwoWells", "worst_case", "trajectory", "basin"]


class TwoWells:
    """The surface above; defaults give a sharp well at (-0.75, 0) that is deeper than the flat one at (0.75, 0)."""

    def __init__(self, sharp: tuple[float, float] = (-0.75, 0.0), flat: tuple[float, float] = (0.75, 0.0),
                 sharp_width: float = 0.15, flat_width: float = 0.8, sharp_depth: float = 1.0,
                 flat_depth: float = 0.85) -> None:
        self.sharp, self.flat = torch.tensor(sharp), torch.tensor(flat)
        self.sharp_width, self.flat_width = sharp_width, flat_width
        self.sharp_depth, self.flat_depth = sharp_depth, flat_depth

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        """L at points `w` of shape (..., 2)."""
        ds = ((w - self.sharp.to(w)) ** 2).sum(-1)
        df = ((w - self.flat.to(w)) ** 2).sum(-1)
        return (1.0 - self.sharp_depth * torch.exp(-ds / (2 * self.sharp_width ** 2))
                - self.flat_depth * torch.exp(-df / (2 * self.flat_width ** 2)))


def worst_case(loss: Callable[[torch.Tensor], torch.Tensor], points: torch.Tensor, rho: float,
               directions: int = 64, rings: int = 8) -> torch.Tensor:
    """$L^{SAM}_\\rho$ at `points` (..., 2): the largest loss over the ball of radius ρ.

    Searched by brute force: the centre and `directions` points on each of `rings` circles.
    """
    angles = torch.arange(directions, dtype=points.dtype) * (2 * math.pi / directions)
    circle = torch.stack([torch.cos(angles), torch.sin(angles)], -1)
    radii = torch.linspace(0, rho, rings + 1, dtype=points.dtype)[1:]
    offsets = torch.cat([torch.zeros(1, 2, dtype=points.dtype), (radii[:, None, None] * circle).reshape(-1, 2)])
    return loss(points.unsqueeze(-2) + offsets).amax(-1)


def trajectory(loss: Callable[[torch.Tensor], torch.Tensor], make_optimizer: Callable[[list], torch.optim.Optimizer],
               start: tuple[float, float], steps: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Positions (steps + 1, 2) of `make_optimizer([w])` minimizing `loss` from `start`.

    Full batch when `noise` is 0; otherwise each step's loss is L(w) + ξ·w, ξ ~ N(0, noise² I), one ξ per step
    drawn from `seed`. The optimizer is stepped with a closure, so SAM (two passes per step, the same ξ) and plain
    optimizers run alike.
    """
    w = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    optimizer = make_optimizer([w])
    draws = torch.Generator().manual_seed(seed)
    path = [w.detach().clone()]
    for _ in range(steps):
        xi = noise * torch.randn(2, generator=draws, dtype=torch.float64)  # this step's mini-batch

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            value = loss(w) + (xi * w).sum()  # gradient: ∇L(w) + ξ
            value.backward()
            return value

        optimizer.step(closure)
        path.append(w.detach().clone())
    return torch.stack(path).numpy()


def basin(loss: Callable[[torch.Tensor], torch.Tensor], point: np.ndarray, minima: list[tuple[float, float]],
          lr: float = 0.01, steps: int = 400) -> int:
    """The index in `minima` of the minimum that full-batch gradient descent reaches from `point` (the basin
    `point` lies in); -1 when it ends near none of them (farther than 0.1)."""
    end = trajectory(loss, lambda p: torch.optim.SGD(p, lr=lr), tuple(float(x) for x in point), steps)[-1]
    distances = np.linalg.norm(np.asarray(minima) - end, axis=1)
    return int(distances.argmin()) if distances.min() < 0.1 else -1
