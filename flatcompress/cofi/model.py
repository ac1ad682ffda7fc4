"""A BERT classifier that CoFi's gates act on, and its physically pruned form (Xia et al. 2022, §3).

`GatedBert(model)` runs a Hugging Face BERT-style sequence classifier with its own forward, so CoFi's
gates (`flatcompress.cofi.shapes.CoFiGates`) can multiply in where CoFi puts them. For layer $\\ell$ with
input $x$ (already multiplied by the hidden gate $z^{\\mathrm{hid}}$):

$$o^{\\mathrm{att}} = z^{\\mathrm{hl}}_\\ell\\, W_O \\big[z^{\\mathrm{head}}_{\\ell,1} \\mathrm{head}_1(x); \\dots;
z^{\\mathrm{head}}_{\\ell,H} \\mathrm{head}_H(x)\\big] \\odot z^{\\mathrm{hid}}, \\qquad
x \\leftarrow \\mathrm{LN}_{z^{\\mathrm{hid}}}(x + o^{\\mathrm{att}}) \\odot z^{\\mathrm{hid}},$$

$$o^{\\mathrm{ffn}} = z^{\\mathrm{mlp}}_\\ell\\, W_2 \\big(z^{\\mathrm{int}}_\\ell \\odot \\mathrm{GELU}(W_1 x)\\big) \\odot z^{\\mathrm{hid}},
\\qquad x \\leftarrow \\mathrm{LN}_{z^{\\mathrm{hid}}}(x + o^{\\mathrm{ffn}}) \\odot z^{\\mathrm{hid}},$$

where $\\mathrm{LN}_{z}$ normalizes over the hidden dimensions whose gate is not zero. Without gates it is
the plain model (a test checks it against Hugging Face's forward).

`prune_physically(model, gates)` folds the gate values into the weights and deletes every structure whose
gate is zero: heads, FFN units, whole sublayers and hidden dimensions. Layers may then differ in width,
which a `BertConfig` cannot describe, so the result is a `GatedBert` whose forward reads every size from
its weights; `save_pruned`/`load_pruned` store it as safetensors plus a JSON of those sizes.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["GatedBert", "prune_physically", "prune_hidden_input", "save_pruned", "load_pruned"]


def _layer_norm(x: torch.Tensor, norm: torch.nn.LayerNorm, hidden: torch.Tensor | None) -> torch.Tensor:
    """LayerNorm over the hidden dimensions whose gate is non-zero (all of them without a gate)."""
    if hidden is None:
        return norm(x)
    kept = torch.nonzero(hidden, as_tuple=True)[0]
    out = torch.zeros_like(x)
    out[..., kept] = F.layer_norm(x[..., kept], (len(kept),), norm.weight[kept], norm.bias[kept], norm.eps)
    return out * hidden


class GatedBert(torch.nn.Module):
    """A BERT-style sequence classifier (`model.bert`, `model.classifier`) run with CoFi's gates."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.config = model.config
        self.head_size = model.config.hidden_size // model.config.num_attention_heads
        self.train(model.training)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                gates: dict[str, torch.Tensor] | None = None) -> SimpleNamespace:
        """Logits (and every layer's output in `hidden_states`, for layer distillation); `gates` as from
        `CoFiGates.sample()` or `.deterministic()`, or None for the model as it is."""
        g = gates or {}
        bert = self.model.bert
        hidden = g.get("hidden")
        x = self._embed(input_ids, token_type_ids, hidden)
        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        additive = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        states = [x]
        for i, layer in enumerate(bert.encoder.layer):
            if layer.attention is not None:
                out = self._attention(layer.attention, x, additive, g, i)
                x = _layer_norm(x + out, layer.attention.output.LayerNorm, hidden)
            else:  # the attention sublayer was pruned away: only its LayerNorm is left
                x = _layer_norm(x, layer.attention_norm, hidden)
            if layer.intermediate is not None:
                h = layer.intermediate(x)
                if "intermediate" in g:
                    h = h * g["intermediate"][i]
                out = layer.output.dropout(layer.output.dense(h))
                if "mlp" in g:
                    out = out * g["mlp"][i]
                if hidden is not None:
                    out = out * hidden
                x = _layer_norm(x + out, layer.output.LayerNorm, hidden)
            else:
                x = _layer_norm(x, layer.output_norm, hidden)
            states.append(x)
        pooled = bert.pooler(x) if bert.pooler is not None else x[:, 0]
        logits = self.model.classifier(self.model.dropout(pooled))
        loss = None
        if labels is not None:
            loss = (F.mse_loss(logits.squeeze(-1), labels.float()) if logits.shape[-1] == 1
                    else F.cross_entropy(logits, labels))
        return SimpleNamespace(logits=logits, loss=loss, hidden_states=states)

    def _embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
               hidden: torch.Tensor | None) -> torch.Tensor:
        """Word + position + token-type embeddings, LayerNorm over the kept hidden dimensions, dropout."""
        emb = self.model.bert.embeddings
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None]
        types = token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)
        x = emb.word_embeddings(input_ids) + emb.position_embeddings(positions) + emb.token_type_embeddings(types)
        return emb.dropout(_layer_norm(x, emb.LayerNorm, hidden))

    def _attention(self, attention: torch.nn.Module, x: torch.Tensor, additive: torch.Tensor,
                   g: dict[str, torch.Tensor], i: int) -> torch.Tensor:
        sa, b, t = attention.self, x.shape[0], x.shape[1]

        def split(t_: torch.Tensor) -> torch.Tensor:
            return t_.view(b, t, -1, self.head_size).transpose(1, 2)

        q, k, v = split(sa.query(x)), split(sa.key(x)), split(sa.value(x))
        dropout = sa.dropout.p if sa.training else 0.0
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=additive, dropout_p=dropout,
                                             scale=1 / math.sqrt(self.head_size))
        if "head" in g:
            ctx = ctx * g["head"][i][None, :, None, None]
        out = attention.output.dropout(attention.output.dense(ctx.transpose(1, 2).reshape(b, t, -1)))
        if "head_layer" in g:
            out = out * g["head_layer"][i]
        if "hidden" in g:
            out = out * g["hidden"]
        return out


def _linear(old: torch.nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None,
            row_scale: torch.Tensor | None = None, col_scale: torch.Tensor | None = None) -> torch.nn.Linear:
    """A smaller copy of `old` keeping `rows` (outputs) and `cols` (inputs), with gate values folded in."""
    weight, bias = old.weight.detach().clone(), old.bias.detach().clone()
    if row_scale is not None:
        weight, bias = weight * row_scale[:, None], bias * row_scale
    if col_scale is not None:
        weight = weight * col_scale[None, :]
    if rows is not None:
        weight, bias = weight[rows], bias[rows]
    if cols is not None:
        weight = weight[:, cols]
    new = torch.nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        new.weight.copy_(weight)
        new.bias.copy_(bias)
    return new


def _norm(old: torch.nn.LayerNorm, kept: torch.Tensor, scale: torch.Tensor) -> torch.nn.LayerNorm:
    new = torch.nn.LayerNorm(len(kept), eps=old.eps)
    with torch.no_grad():
        new.weight.copy_(old.weight.detach()[kept] * scale[kept])
        new.bias.copy_(old.bias.detach()[kept] * scale[kept])
    return new


@torch.no_grad()
def prune_physically(gated: GatedBert, gates: dict[str, torch.Tensor]) -> GatedBert:
    """A new, smaller `GatedBert` whose plain forward equals `gated`'s forward with these (evaluation) gates."""
    model = copy.deepcopy(gated.model).eval()
    bert, size = model.bert, gated.head_size
    layers = len(bert.encoder.layer)
    ones = {"head": torch.ones(layers, model.config.num_attention_heads), "head_layer": torch.ones(layers),
            "intermediate": torch.ones(layers, model.config.intermediate_size), "mlp": torch.ones(layers),
            "hidden": torch.ones(model.config.hidden_size)}
    g = {k: gates.get(k, v).detach().float() for k, v in ones.items()}
    hid = g["hidden"]
    kept = torch.nonzero(hid, as_tuple=True)[0]
    emb = bert.embeddings
    for table in (emb.word_embeddings, emb.position_embeddings, emb.token_type_embeddings):
        table.weight = torch.nn.Parameter(table.weight.detach()[:, kept].clone())
        table.embedding_dim = len(kept)
    emb.LayerNorm = _norm(emb.LayerNorm, kept, hid)
    for i, layer in enumerate(bert.encoder.layer):
        heads = torch.nonzero(g["head"][i], as_tuple=True)[0]
        att = layer.attention
        if g["head_layer"][i] == 0 or len(heads) == 0:
            layer.attention_norm = _norm(att.output.LayerNorm, kept, hid)
            layer.attention = None
        else:
            units = torch.cat([torch.arange(h * size, (h + 1) * size) for h in heads.tolist()])
            head_scale = g["head"][i].repeat_interleave(size)
            att.self.query = _linear(att.self.query, units, kept)
            att.self.key = _linear(att.self.key, units, kept)
            att.self.value = _linear(att.self.value, units, kept, row_scale=head_scale)
            att.output.dense = _linear(att.output.dense, kept, units, row_scale=g["head_layer"][i] * hid)
            att.output.LayerNorm = _norm(att.output.LayerNorm, kept, hid)
        units = torch.nonzero(g["intermediate"][i], as_tuple=True)[0]
        if g["mlp"][i] == 0 or len(units) == 0:
            layer.output_norm = _norm(layer.output.LayerNorm, kept, hid)
            layer.intermediate, layer.output = None, None
        else:
            layer.intermediate.dense = _linear(layer.intermediate.dense, units, kept)
            layer.output.dense = _linear(layer.output.dense, kept, units, row_scale=g["mlp"][i] * hid,
                                         col_scale=g["intermediate"][i])
            layer.output.LayerNorm = _norm(layer.output.LayerNorm, kept, hid)
    if bert.pooler is not None:
        bert.pooler.dense = _linear(bert.pooler.dense, cols=kept)
    else:
        model.classifier = _linear(model.classifier, cols=kept)
    return GatedBert(model)


@torch.no_grad()
def prune_hidden_input(linear: torch.nn.Linear, gates: dict[str, torch.Tensor]) -> torch.nn.Linear:
    """A copy of `linear` that reads the physically pruned model's hidden states: the input columns of the hidden
    dimensions whose gate is zero are removed, so it gives on the pruned states what `linear` gave on the masked
    ones (the layer-distillation map of the fine-tuning stage, as CoFi prunes its `layer_transformation`)."""
    if "hidden" not in gates:
        return linear
    return _linear(linear, cols=torch.nonzero(gates["hidden"], as_tuple=True)[0].to(linear.weight.device))


def save_pruned(gated: GatedBert, path: str | Path) -> Path:
    """Write a (pruned) `GatedBert` as `<path>.safetensors` plus `<path>.json` (its config and class)."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().contiguous() for k, v in gated.model.state_dict().items()}
    save_file(state, str(path.with_suffix(".safetensors")))
    path.with_suffix(".json").write_text(json.dumps({"class": type(gated.model).__name__,
                                                     "config": gated.model.config.to_dict()}, indent=1))
    return path.with_suffix(".safetensors")


def load_pruned(path: str | Path) -> GatedBert:
    """The model `save_pruned` wrote: a model of the saved class, every module resized to the stored tensors."""
    import transformers
    from safetensors.torch import load_file

    path = Path(path)
    meta: dict[str, Any] = json.loads(path.with_suffix(".json").read_text())
    state = load_file(str(path.with_suffix(".safetensors")))
    from flatcompress.models import ARCHITECTURES

    if meta.get("class") not in ARCHITECTURES:
        raise ValueError(f"{path} names model class {meta.get('class')!r}; valid: {', '.join(ARCHITECTURES)}")
    config = transformers.AutoConfig.for_model(**meta["config"])
    model = getattr(transformers, meta["class"])(config)
    for i, layer in enumerate(model.bert.encoder.layer):
        prefix = f"bert.encoder.layer.{i}."
        if f"{prefix}attention_norm.weight" in state:
            layer.attention, layer.attention_norm = None, torch.nn.LayerNorm(1, eps=config.layer_norm_eps)
        if f"{prefix}output_norm.weight" in state:
            layer.intermediate, layer.output = None, None
            layer.output_norm = torch.nn.LayerNorm(1, eps=config.layer_norm_eps)
    for name, module in list(model.named_modules()):
        weight = state.get(f"{name}.weight")
        if weight is None or tuple(weight.shape) == tuple(module.weight.shape):
            continue
        parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
        if isinstance(module, torch.nn.Linear):
            new: torch.nn.Module = torch.nn.Linear(weight.shape[1], weight.shape[0])
        elif isinstance(module, torch.nn.LayerNorm):
            new = torch.nn.LayerNorm(weight.shape[0], eps=module.eps)
        elif isinstance(module, torch.nn.Embedding):
            new = torch.nn.Embedding(*weight.shape, padding_idx=module.padding_idx)  # no gradient to [PAD]'s row
        else:
            raise ValueError(f"cannot resize {name} ({type(module).__name__})")
        setattr(parent, name.rpartition(".")[2], new)
    model.load_state_dict(state, strict=True)
    return GatedBert(model.eval())
