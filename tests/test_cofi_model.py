"""CoFi's gated BERT: the plain forward is Hugging Face's, and the physically pruned model equals the masked one."""

from __future__ import annotations

import pytest
import torch
from conftest import random_batch, tiny_bert

from flatcompress.cofi.model import GatedBert, load_pruned, prune_hidden_input, prune_physically, save_pruned
from flatcompress.cofi.shapes import CoFiGates, EncoderShape


@pytest.fixture(scope="module")
def tiny():
    model = tiny_bert(vocab_size=200, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64)
    batch = random_batch(200, rows=6, length=10, padded_rows=slice(0, 3), pad_from=6)
    batch["token_type_ids"] = (torch.arange(10) >= 5).long().expand(6, -1)  # a second segment
    return model, batch


def _gates(model) -> tuple[CoFiGates, dict[str, torch.Tensor]]:
    """Evaluation gates that remove a bit of everything: heads, a whole attention sublayer, FFN units,
    a whole FFN sublayer and hidden dimensions (the kept gates keep soft values below 1)."""
    gates = CoFiGates(EncoderShape.of(model.config))
    with torch.no_grad():
        for gate in gates.gates.values():
            gate.log_alpha.fill_(3.0)
        gates.gates["head"].log_alpha[0, 1] = -9.0
        gates.gates["head"].log_alpha[2, :3] = -9.0
        gates.gates["head_layer"].log_alpha[1] = -9.0
        gates.gates["intermediate"].log_alpha[0, ::3] = -9.0
        gates.gates["mlp"].log_alpha[2] = -9.0
        gates.gates["hidden"].log_alpha[::4] = -9.0
    return gates, gates.deterministic()


def test_the_plain_forward_is_hugging_faces(tiny):
    model, batch = tiny
    with torch.no_grad():
        ours, theirs = GatedBert(model)(**batch).logits, model(**batch).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_the_physically_pruned_model_matches_the_masked_one(tiny):
    model, batch = tiny
    gates, z = _gates(model)
    assert (z["head"][0, 1] == 0) and (z["hidden"][::4] == 0).all() and (z["hidden"][1] < 1)
    gated = GatedBert(model)
    pruned = prune_physically(gated, z)
    with torch.no_grad():
        masked_out, pruned_out = gated(**batch, gates=z), pruned(**batch)
    torch.testing.assert_close(pruned_out.logits, masked_out.logits, atol=1e-5, rtol=1e-4)
    kept = torch.nonzero(z["hidden"], as_tuple=True)[0]
    torch.testing.assert_close(pruned_out.hidden_states[-1], masked_out.hidden_states[-1][..., kept], atol=1e-5,
                               rtol=1e-4)
    transform = torch.nn.Linear(32, 32)  # the layer-distillation map reads the pruned states as it read the masked
    torch.testing.assert_close(prune_hidden_input(transform, z)(pruned_out.hidden_states[1]),
                               transform(masked_out.hidden_states[1]), atol=1e-5, rtol=1e-4)
    layers = pruned.model.bert.encoder.layer
    assert layers[0].attention.self.query.weight.shape == (3 * 8, 24)  # 3 of 4 heads, 24 of 32 hidden dims
    assert layers[1].attention is None and layers[2].intermediate is None  # whole sublayers gone
    assert layers[2].attention.self.value.weight.shape[0] == 8  # one head left
    assert layers[0].intermediate.dense.weight.shape == (64 - 22, 24)
    assert sum(p.numel() for p in pruned.parameters()) < 0.7 * sum(p.numel() for p in model.parameters())
    assert gates.sparsity(z) > 0.3


def test_a_pruned_model_saves_and_loads_as_a_model(tiny, tmp_path):
    model, batch = tiny
    _, z = _gates(model)
    pruned = prune_physically(GatedBert(model), z)
    save_pruned(pruned, tmp_path / "student")
    loaded = load_pruned(tmp_path / "student")
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, pruned(**batch).logits)
    assert (tmp_path / "student.json").is_file()
    # it trains as the pruned model would: [PAD]'s embedding row still gets no gradient
    assert loaded.model.bert.embeddings.word_embeddings.padding_idx == model.config.pad_token_id == 0
