"""Quantization-aware training (QAT) in the manner of Q8BERT (Zafrir et al., 2019), the paper's "QAT Ref." (Table 8).

The paper compares post-training int8 of SAM models with Q8BERT's reported numbers; this module trains QAT
ourselves, on the same model and data, so the comparison is made side by side (`FinetuneConfig(qat=True)`).

Q8BERT quantizes symmetrically to int8 with one scale per tensor,

$$\\hat x = \\mathrm{clamp}(\\mathrm{round}(x \\cdot s_x), -127, 127), \\qquad s_x = 127 / \\max|x|,$$

every Linear layer's weights (the scale from the weights at each step) and inputs (the scale from an exponential
moving average of $\\max|x|$ over training batches, decay 0.9999, the first batch's value at the start; frozen in
evaluation; under SAM both forward passes of a step update it), and the embedding tables. Training runs in floating
point on the *fake-quantized* values $\\hat x / s_x$ and passes gradients straight through the rounding (the
straight-through estimator,
$\\partial \\hat x / \\partial x := 1$). Left in floating point, as in Q8BERT: biases (its 32-bit biases at scale
$s_W s_x$ round to the same values within float precision), LayerNorm, softmax, GELU and the attention products;
Q8BERT's re-quantization of some outputs is not modelled.

Why a module of our own rather than `torch.ao.quantization`'s QAT flow: that flow is built for static graphs of
Conv/Linear with observers on every op and fused BatchNorm, and needs FX tracing or hand-placed stubs around every
Hugging Face attention block; the recipe above is a dozen lines per layer, runs on any device, and converts to
the integer model below exactly.

`prepare_qat(model)` swaps the layers in place (the parameters are the same tensors, so masks, optimizers and state
dicts keep their names); `convert_int8(model)` gives a CPU model whose Linear layers multiply int8 by int8 into
int32 (`torch._int_mm`) and rescale, $y = (\\hat x \\hat W^\\top) / (s_x s_W) + b$: the fake-quantized model's
outputs, computed in integers.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

__all__ = ["QMAX", "fake_quantize", "QATLinear", "QATEmbedding", "Int8Linear", "Int8Embedding", "prepare_qat",
           "convert_int8", "is_qat"]

QMAX = 127  # symmetric int8: -127 ... 127 (Q8BERT leaves -128 unused)
EMA_DECAY = 0.9999  # Q8BERT's decay of the activation range


def _scale(amax: torch.Tensor) -> torch.Tensor:
    """s = 127 / max|x| (a zero tensor quantizes to zeros at any scale)."""
    return QMAX / amax.clamp(min=torch.finfo(torch.float32).tiny)


def _quantize(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x̂ = clamp(round(x s), −127, 127), as floats holding integers."""
    return torch.clamp(torch.round(x * scale), -QMAX, QMAX)


def fake_quantize(x: torch.Tensor, amax: torch.Tensor) -> torch.Tensor:
    """x̂ / s in fp32, with the straight-through estimator: forward the quantized value, backward the identity."""
    x32 = x.float()
    scale = _scale(amax.float())
    q = _quantize(x32, scale) / scale
    return (x32 + (q - x32).detach()).to(x.dtype)  # value q, gradient ∂q/∂x := 1


class QATLinear(torch.nn.Module):
    """A Linear layer trained on int8-rounded weights and inputs (same `weight` and `bias` parameters)."""

    def __init__(self, linear: torch.nn.Linear, decay: float = EMA_DECAY) -> None:
        super().__init__()
        self.in_features, self.out_features, self.decay = linear.in_features, linear.out_features, decay
        self.weight, self.bias = linear.weight, linear.bias
        device = linear.weight.device
        self.register_buffer("input_amax", torch.zeros((), device=device))  # EMA of max|x|
        self.register_buffer("steps", torch.zeros((), dtype=torch.long, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():  # amax ← max|x| at the first batch, then amax − (1 − decay)(amax − max|x|)
                current = x.detach().abs().max().float()
                moved = self.input_amax - (1 - self.decay) * (self.input_amax - current)
                self.input_amax.copy_(torch.where(self.steps == 0, current, moved))  # no host sync on a GPU
                self.steps += 1
        weight = fake_quantize(self.weight, self.weight.detach().abs().max())
        return F.linear(fake_quantize(x, self.input_amax), weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights and inputs"


class QATEmbedding(torch.nn.Module):
    """An embedding table trained through its int8-rounded values (same `weight` parameter)."""

    def __init__(self, embedding: torch.nn.Embedding) -> None:
        super().__init__()
        self.weight, self.padding_idx = embedding.weight, embedding.padding_idx
        self.num_embeddings, self.embedding_dim = embedding.num_embeddings, embedding.embedding_dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, fake_quantize(self.weight, self.weight.detach().abs().max()), self.padding_idx)


class Int8Linear(torch.nn.Module):
    """The integer version of a trained `QATLinear`: int8 weights, the learned input scale, int32 accumulation."""

    def __init__(self, layer: QATLinear) -> None:
        super().__init__()
        weight = layer.weight.detach().float().cpu()
        self.register_buffer("weight_scale", _scale(weight.abs().max()))
        self.register_buffer("input_scale", _scale(layer.input_amax.detach().float().cpu()))
        self.register_buffer("weight_int8", _quantize(weight, self.weight_scale).to(torch.int8).t().contiguous())
        self.register_buffer("bias", None if layer.bias is None else layer.bias.detach().float().cpu())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x_int8 = _quantize(x.float().reshape(-1, shape[-1]), self.input_scale).to(torch.int8)
        accumulated = torch._int_mm(x_int8, self.weight_int8)  # Σ x̂ Ŵ in int32
        y = accumulated.float() / (self.input_scale * self.weight_scale)  # y = (x̂ Ŵᵀ) / (s_x s_W) + b
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], -1)


class Int8Embedding(torch.nn.Module):
    """The integer version of a `QATEmbedding`: an int8 table and its scale."""

    def __init__(self, layer: QATEmbedding) -> None:
        super().__init__()
        weight = layer.weight.detach().float().cpu()
        self.register_buffer("scale", _scale(weight.abs().max()))
        self.register_buffer("weight_int8", _quantize(weight, self.scale).to(torch.int8))
        self.padding_idx = layer.padding_idx

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.weight_int8).float() / self.scale


def _swap(model: torch.nn.Module, make: dict[type, type]) -> int:
    """Replace every child module whose type is a key of `make` by `make[type](child)`; how many were replaced."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) in make:
                setattr(parent, name, make[type(child)](child))
                replaced += 1
    return replaced


def prepare_qat(model: torch.nn.Module, decay: float = EMA_DECAY) -> torch.nn.Module:
    """Make `model` train with Q8BERT's fake quantization: every `nn.Linear` and `nn.Embedding` swapped in place for
    its QAT version (the parameters are the same tensors, on the same device). Returns `model`."""
    if is_qat(model):
        raise ValueError("the model is already prepared for quantization-aware training")
    if not 0 <= decay < 1:
        raise ValueError(f"the EMA decay must be in [0, 1), got {decay}")
    _swap(model, {torch.nn.Linear: lambda m: QATLinear(m, decay), torch.nn.Embedding: QATEmbedding})
    return model


def is_qat(model: torch.nn.Module) -> bool:
    """Has `prepare_qat` been applied to `model`?"""
    return any(isinstance(m, (QATLinear, QATEmbedding)) for m in model.modules())


def convert_int8(model: torch.nn.Module) -> torch.nn.Module:
    """An integer copy of a QAT-trained `model` on the CPU, in eval mode (`model` is left as it is); every QAT layer
    must have seen training batches (its input range is learned)."""
    if not is_qat(model):
        raise ValueError("convert_int8 takes a model trained with quantization-aware training (prepare_qat)")
    untrained = [n for n, m in model.named_modules() if isinstance(m, QATLinear) and int(m.steps) == 0]
    if untrained:
        raise ValueError(f"{len(untrained)} QAT layer(s) never saw a training batch, so their input range is unknown "
                         f"(e.g. {untrained[0]})")
    integer = copy.deepcopy(model).cpu().eval()
    _swap(integer, {QATLinear: Int8Linear, QATEmbedding: Int8Embedding})
    integer.quantization = {"backend": "qat-int8", "embeddings": True}
    return integer
