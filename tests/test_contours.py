"""Loss contours (Fig. 6): the plane's basis, the models' places on it, and a resumed grid equal to a whole one."""

import copy

import pytest
import torch
from conftest import random_batch, tiny_bert

from flatcompress.flatness.contours import _body, _flat, evaluate_plane, grid_axes, measure_contours, plane_through


def test_the_plane_is_orthonormal_and_holds_the_three_points():
    g = torch.Generator().manual_seed(0)
    w0, w1, w2 = (torch.randn(50, generator=g, dtype=torch.float64) for _ in range(3))
    plane = plane_through(w0, w1, w2)
    assert plane.u @ plane.u == pytest.approx(1) and plane.v @ plane.v == pytest.approx(1)
    assert plane.u @ plane.v == pytest.approx(0, abs=1e-12)
    assert plane.coordinates(w0) == (0.0, 0.0)
    a, b = plane.coordinates(w2)
    assert a == pytest.approx(float((w2 - w0).norm())) and b == pytest.approx(0, abs=1e-12)  # u points at w2
    for w in (w0, w1, w2):  # each model is its own point of the plane
        assert torch.allclose(plane.point(*plane.coordinates(w)), w, atol=1e-12)
    with pytest.raises(ValueError, match="on one line"):
        plane_through(w0, w0 + 2 * (w2 - w0), w2)
    a_values, b_values = grid_axes([(0, 0), (1, 2), (3, -1)], size=5, margin=0.5)
    assert a_values.tolist() == [-1.5, 0.0, 1.5, 3.0, 4.5] and (b_values[0], b_values[-1]) == (-2.5, 3.5)


def _models():
    base = tiny_bert(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                     num_labels=2)
    models = [base]
    for seed in (1, 2):
        m = copy.deepcopy(base)
        torch.manual_seed(seed)
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.05 * torch.randn_like(p))
        models.append(m.eval())
    return models


def test_each_model_sits_at_its_coordinates_and_a_resumed_grid_equals_a_whole_one():
    pre, adam, sam = _models()
    batch = random_batch(60, rows=6, length=10, padded_rows=slice(0, 3), pad_from=6)
    batch["labels"] = torch.tensor([0, 1, 0, 1, 1, 0])

    def score(m):
        with torch.no_grad():
            return float(m(**batch).loss), 0.0

    plane = plane_through(_flat(pre), _flat(adam), _flat(sam))
    for source in (pre, adam, sam):  # a point with SAM's head: that model's body and SAM's head
        a, b = plane.coordinates(_flat(source))
        hybrid = copy.deepcopy(sam)
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(_flat(source), _body(hybrid))
        (loss, _), = evaluate_plane(copy.deepcopy(sam), plane, [a], [b], score)[0]
        assert loss == pytest.approx(score(hybrid)[0], abs=1e-5)
    a_values, b_values = grid_axes([plane.coordinates(_flat(m)) for m in (pre, adam, sam)], size=4)
    before = _flat(sam).clone()
    whole = evaluate_plane(sam, plane, a_values, b_values, score)
    assert torch.equal(_flat(sam), before)  # the model's weights are restored

    class Killed(Exception):
        pass

    def kill_after_two(rows):
        if len(rows) == 2:
            saved.extend(copy.deepcopy(rows))
            raise Killed

    saved = []
    with pytest.raises(Killed):
        evaluate_plane(sam, plane, a_values, b_values, score, on_row=kill_after_two)
    assert torch.equal(_flat(sam), before) and len(saved) == 2
    assert evaluate_plane(sam, plane, a_values, b_values, score, done=saved) == whole


def test_the_contours_record_of_two_smoke_runs(tmp_path, smoke_config, capsys):
    from flatcompress.training import finetune

    adam, sam = (finetune(smoke_config(optimizer=o, **({"optimizer_kwargs": {"rho": 0.05}} if o == "sam" else {})),
                          results_dir=tmp_path, save_checkpoint=True, progress=False) for o in ("adamw", "sam"))
    capsys.readouterr()
    record = measure_contours(adam, sam, head="adamw", size=3, n_examples=8, results_dir=tmp_path, progress=True)
    assert "contours of rotten_tomatoes seed 0 (adamw head), grid rows" in capsys.readouterr().err
    assert record["kind"] == "contours" and len(record["loss"]) == 3 and all(len(r) == 3 for r in record["loss"])
    assert record["points"]["pre-trained"] == [0.0, 0.0] and record["points"]["sam"][1] == pytest.approx(0, abs=1e-6)
    assert not list(tmp_path.rglob("*.partial.json"))  # the snapshot is gone once the record is written
    again = measure_contours(adam, sam, head="adamw", size=3, n_examples=8, results_dir=tmp_path, compute=False)
    assert again["loss"] == record["loss"]
    with pytest.raises(ValueError, match="head must be"):
        measure_contours(adam, sam, head="swa", results_dir=tmp_path)
    from flatcompress.audit import audit

    assert audit(tmp_path).ok and not audit(tmp_path).legacy  # a contours record passes, judged by both its runs
    adam.path.unlink()
    assert f"measures run {adam.record['key'][:12]}, which has no record here" in "\n".join(audit(tmp_path).errors)
