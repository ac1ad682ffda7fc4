"""CoFi structured pruning (Xia, Zhong & Chen 2022; paper §2.2.2): gates, sparsity accounting, the constraint.

CoFi puts hard-concrete gates (`flatcompress.cofi.gates`) on five kinds of structure of an
$L$-layer encoder with $H$ heads, hidden size $D$ and FFN size $I$:

| gate | shape | removes |
|---|---|---|
| `head` | $L \\times H$ | one attention head (its slices of Q, K, V and the output projection) |
| `head_layer` | $L$ | a whole attention sublayer |
| `intermediate` | $L \\times I$ | one FFN unit (a column of the up- and a row of the down-projection) |
| `mlp` | $L$ | a whole FFN sublayer |
| `hidden` | $D$ | one hidden dimension, in every layer at once |

Sparsity is counted as CoFi counts it: over the attention and FFN parameters only (embeddings, the
pooler and the head excluded), with $4D^2 + 4D$ parameters per attention sublayer and
$2DI + 5D$ per FFN sublayer, so BERT-base has 85,017,600 prunable parameters. The *expected*
remaining size, differentiable in the gates' $\\log\\alpha$, is

$$\\hat s = \\sum_{\\ell, h} \\frac{4D^2 + 4D}{H D}\\, \\sum_d p^{\\mathrm{hid}}_d\\, p^{\\mathrm{head}}_{\\ell h} p^{\\mathrm{hl}}_\\ell
\\;+\\; 2 \\sum_{\\ell, i} \\sum_d p^{\\mathrm{hid}}_d\\, p^{\\mathrm{int}}_{\\ell i} p^{\\mathrm{mlp}}_\\ell,$$

with $p = P(z \\ne 0)$ per gate, and the Lagrangian of Wang et al. (2020) drives the expected sparsity
$1 - \\hat s / N$ to the target $t$: the model minimizes, and the multipliers $\\lambda_1, \\lambda_2$ maximize,

$$\\mathcal{L}_c = \\lambda_1 (\\hat\\rho - t) + \\lambda_2 (\\hat\\rho - t)^2,$$

where $t$ rises linearly from 0 to the target over a warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from flatcompress.cofi.gates import HardConcrete

__all__ = ["EncoderShape", "CoFiGates", "Lagrangian", "check_target", "uniform_gates"]

GATE_KINDS = ("head", "head_layer", "intermediate", "mlp", "hidden")


def check_target(target: float) -> float:
    """A structured-pruning target sparsity is a fraction in (0, 1)."""
    if not 0.0 < float(target) < 1.0:
        raise ValueError(f"target sparsity must be in (0, 1), got {target}")
    return float(target)


@dataclass(frozen=True)
class EncoderShape:
    """The sizes CoFi's accounting needs: layers, heads, hidden and FFN width."""

    layers: int
    heads: int
    hidden: int
    intermediate: int

    @classmethod
    def of(cls, config) -> "EncoderShape":
        """From a Hugging Face BERT-style config."""
        return cls(config.num_hidden_layers, config.num_attention_heads, config.hidden_size, config.intermediate_size)

    @property
    def attention_params(self) -> int:
        """Parameters of one attention sublayer: Q, K, V, output weights and biases ($4D^2 + 4D$)."""
        return 4 * self.hidden * self.hidden + 4 * self.hidden

    @property
    def ffn_params(self) -> int:
        """Parameters of one FFN sublayer as CoFi counts them: $2DI + D + 4D$."""
        return 2 * self.hidden * self.intermediate + 5 * self.hidden

    @property
    def prunable(self) -> int:
        """CoFi's prunable size $N$: every attention and FFN sublayer."""
        return self.layers * (self.attention_params + self.ffn_params)

    def size(self, head: torch.Tensor, head_layer: torch.Tensor, intermediate: torch.Tensor, mlp: torch.Tensor,
             hidden: torch.Tensor) -> torch.Tensor:
        """The remaining size for gate values (probabilities: the expected size; 0/1 masks: the real count).

        Shapes: head (L, H), head_layer (L), intermediate (L, I), mlp (L), hidden (D).
        """
        heads = (head * head_layer[:, None]).sum()
        units = (intermediate * mlp[:, None]).sum()
        dims = hidden.sum()
        per_head_per_dim = self.attention_params / (self.heads * self.hidden)
        return dims * (heads * per_head_per_dim + 2 * units)


class CoFiGates(torch.nn.Module):
    """All of CoFi's gates for one encoder, initialized as CoFi does (everything open except FFN units,
    which start at $\\log\\alpha = 0$)."""

    def __init__(self, shape: EncoderShape) -> None:
        super().__init__()
        self.shape = shape
        L, H, D, I = shape.layers, shape.heads, shape.hidden, shape.intermediate
        self.gates = torch.nn.ModuleDict({
            "head": HardConcrete((L, H), init_mean=10.0),
            "head_layer": HardConcrete(L, init_mean=10.0, independent=True),
            "intermediate": HardConcrete((L, I), init_mean=0.0),
            "mlp": HardConcrete(L, init_mean=10.0, independent=True),
            "hidden": HardConcrete(D, init_mean=10.0),
        })

    def sample(self) -> dict[str, torch.Tensor]:
        """One draw of every gate (training)."""
        return {k: g.sample() for k, g in self.gates.items()}

    def deterministic(self) -> dict[str, torch.Tensor]:
        """The evaluation gates (see `HardConcrete.deterministic`)."""
        return {k: g.deterministic() for k, g in self.gates.items()}

    def expected_sparsity(self) -> torch.Tensor:
        """$1 - \\hat s / N$, differentiable in every $\\log\\alpha$."""
        p = {k: g.prob_nonzero() for k, g in self.gates.items()}
        return 1 - self.shape.size(**p) / self.shape.prunable

    def sparsity(self, gates: dict[str, torch.Tensor] | None = None) -> float:
        """The real sparsity of 0/1 masks (by default the evaluation gates): structures with a zero gate are gone."""
        gates = self.deterministic() if gates is None else gates
        masks = {k: (v > 0).float() for k, v in gates.items()}
        return float(1 - self.shape.size(**masks) / self.shape.prunable)


class Lagrangian(torch.nn.Module):
    """$\\lambda_1 (\\hat\\rho - t) + \\lambda_2 (\\hat\\rho - t)^2$ with a linear warm-up of the target.

    Optimize `lambdas` by gradient *ascent* (for example an optimizer with a negative learning rate, as in
    CoFi's code, or `maximize=True` in torch's optimizers) and everything else by descent.
    """

    def __init__(self, target: float, warmup_steps: int = 0) -> None:
        super().__init__()
        self.target = check_target(target)
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.warmup_steps = warmup_steps
        self.lambdas = torch.nn.Parameter(torch.zeros(2))

    def target_at(self, step: int) -> float:
        """The target after `step` steps: rising linearly from 0 to `target` over the warm-up."""
        if self.warmup_steps == 0:
            return self.target
        return self.target * min(1.0, step / self.warmup_steps)

    def forward(self, expected_sparsity: torch.Tensor, step: int) -> torch.Tensor:
        """The penalty added to the loss: the gates descend on it, the multipliers ascend."""
        gap = expected_sparsity - self.target_at(step)  # ρ̂ - t, with t rising over the warm-up
        return self.lambdas[0] * gap + self.lambdas[1] * gap * gap  # λ1 (ρ̂ - t) + λ2 (ρ̂ - t)²


def uniform_gates(shape: EncoderShape, keep: float) -> dict[str, torch.Tensor]:
    """0/1 gates that keep the first `keep` fraction (rounded) of the heads and FFN units of every layer and
    the whole hidden dimension: a stand-in structure for speed measurements before a CoFi run has found one.
    A layer left with no heads (or units) loses its attention (or FFN) sublayer."""
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"keep must be in [0, 1], got {keep}")
    L, H, I = shape.layers, shape.heads, shape.intermediate
    head, units = torch.zeros(L, H), torch.zeros(L, I)
    head[:, :round(keep * H)] = 1.0
    units[:, :round(keep * I)] = 1.0
    return {"head": head, "head_layer": (head.sum(-1) > 0).float(), "intermediate": units,
            "mlp": (units.sum(-1) > 0).float(), "hidden": torch.ones(shape.hidden)}
