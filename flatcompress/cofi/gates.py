"""Hard-concrete gates: the differentiable L0 relaxation CoFi prunes with (Louizos, Welling & Kingma 2018).

A gate $z \\in [0, 1]$ multiplies one structure (a head, a hidden unit, a whole layer). It is drawn by
stretching a binary-concrete sample to $(l, r) = (-0.1, 1.1)$ and clipping it back to $[0, 1]$:

$$u \\sim U(0, 1),\\quad s = \\sigma\\!\\left(\\frac{\\log u - \\log(1 - u) + \\log\\alpha}{\\beta}\\right),\\quad
z = \\min\\big(1, \\max(0,\\, s\\,(r - l) + l)\\big),$$

with temperature $\\beta = 2/3$. The clipping puts real probability mass on exactly 0 and exactly 1, so
the gate can switch a structure off, yet $\\log\\alpha$ gets gradients. The expected number of open
gates (the L0 norm) has a closed form,

$$P(z \\ne 0) = 1 - Q(0) = \\sigma\\big(\\log\\alpha - \\beta \\log(-l / r)\\big),$$

which CoFi's sparsity constraint is built from. At evaluation the gates are made deterministic as CoFi
does: the expected number of closed gates, rounded, are set to zero (the smallest $\\log\\alpha$), and
the rest keep the soft value $\\sigma(0.8 \\log\\alpha / \\beta)$.
"""

from __future__ import annotations

import math

import torch

__all__ = ["HardConcrete", "LIMIT_LOW", "LIMIT_HIGH", "TEMPERATURE"]

LIMIT_LOW, LIMIT_HIGH, TEMPERATURE = -0.1, 1.1, 2.0 / 3.0
_EPS = 1e-6
_MAGICAL = 0.8  # CoFi's deterministic-gate sharpening (from Wang et al. 2020)


class HardConcrete(torch.nn.Module):
    """A tensor of hard-concrete gates of `shape`, drawn independently, with learnable $\\log\\alpha$.

    `init_mean` sets $\\log\\alpha$ at the start: 10 makes a gate almost surely open (CoFi's choice for heads,
    layers and the hidden dimension); 0 opens it with probability about 0.5 (CoFi's FFN units).
    `independent=True` makes each evaluation gate close on its own (CoFi's one-per-layer gates); otherwise
    the gates of each row of the last dimension close as a group (see `deterministic`).
    """

    def __init__(self, shape: tuple[int, ...] | int, init_mean: float = 0.0, init_std: float = 0.01,
                 temperature: float = TEMPERATURE, independent: bool = False) -> None:
        super().__init__()
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.log_alpha = torch.nn.Parameter(torch.empty(shape).normal_(init_mean, init_std))
        self.temperature, self.independent = temperature, independent

    def prob_nonzero(self) -> torch.Tensor:
        """$P(z \\ne 0) = \\sigma(\\log\\alpha - \\beta \\log(-l/r))$ per gate (differentiable)."""
        return torch.sigmoid(self.log_alpha - self.temperature * math.log(-LIMIT_LOW / LIMIT_HIGH))

    def prob_one(self) -> torch.Tensor:
        """$P(z = 1) = 1 - Q(1) = \\sigma(\\log\\alpha - \\beta \\log((1 - l)/(r - 1)))$ per gate."""
        return torch.sigmoid(self.log_alpha - self.temperature * math.log((1 - LIMIT_LOW) / (LIMIT_HIGH - 1)))

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw of every gate (training), differentiable in $\\log\\alpha$."""
        u = torch.rand(self.log_alpha.shape, generator=generator, device=self.log_alpha.device)
        u = u.clamp(_EPS, 1 - _EPS)  # u ~ U(0, 1)
        # s = σ((log u - log(1 - u) + log α) / β)
        s = torch.sigmoid((torch.log(u) - torch.log(1 - u) + self.log_alpha) / self.temperature)
        return (s * (LIMIT_HIGH - LIMIT_LOW) + LIMIT_LOW).clamp(0.0, 1.0)  # z = min(1, max(0, s (r - l) + l))

    @torch.no_grad()
    def deterministic(self) -> torch.Tensor:
        """The evaluation gates: per row of the last dimension (per gate if `independent`), round(sum of
        P(z = 0)) gates closed (those with the smallest $\\log\\alpha$), the others $\\sigma(0.8 \\log\\alpha / \\beta)$."""
        soft = torch.sigmoid(self.log_alpha / self.temperature * _MAGICAL)
        rows = soft.reshape(-1, 1) if self.independent or soft.ndim == 0 else soft.reshape(-1, soft.shape[-1])
        closed = torch.round((1 - self.prob_nonzero()).reshape(rows.shape).sum(-1)).long()
        out = rows.clone()
        for row, k in enumerate(closed.tolist()):
            if k > 0:
                out[row, torch.topk(rows[row], k, largest=False).indices] = 0.0
        return out.reshape(soft.shape)

    def extra_repr(self) -> str:
        return f"shape={tuple(self.log_alpha.shape)}, temperature={self.temperature:.3g}"
