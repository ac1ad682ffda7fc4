import itertools

import numpy as np
import pytest
import torch

from flatcompress.flatness.sharpness import (RandomSubspace, batches_loss, epsilon_sharpness, hessian_top_eigenvalue,
                                             sharpness_table)


class Quadratic(torch.nn.Module):
    """f(w) = 1/2 sum_i a_i w_i^2, with w starting at w0."""

    def __init__(self, a, w0):
        super().__init__()
        self.a = torch.tensor(a, dtype=torch.float32)
        self.w = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float32))


def quad_loss(model):
    return 0.5 * (model.a * model.w ** 2).sum()


def test_full_space_sharpness_of_a_quadratic_in_closed_form():
    a, w0, eps = [1.0, 4.0, 2.0], [0.5, 1.0, 2.0], 1e-2
    model = Quadratic(a, w0)
    # f grows away from 0 along every axis: the maximum is the corner w0 + eps (|w0| + 1)
    f0 = 0.5 * sum(ai * wi ** 2 for ai, wi in zip(a, w0))
    fmax = 0.5 * sum(ai * (wi + eps * (abs(wi) + 1)) ** 2 for ai, wi in zip(a, w0))
    expected = 100 * (fmax - f0) / (1 + f0)
    assert epsilon_sharpness(model, quad_loss, eps, dim=None) == pytest.approx(expected, rel=1e-4)
    assert model.w.tolist() == w0  # weights restored exactly


def test_subspace_sharpness_matches_the_best_vertex():
    """A convex f over a box peaks at a vertex: enumerate all 2^p of them for the exact answer."""
    a, w0, eps, p = [1.0, 3.0, 2.0, 0.5, 1.5, 2.5], [0.3, -1.0, 0.8, 2.0, -0.4, 1.2], 5e-2, 3
    model = Quadratic(a, w0)
    sub = RandomSubspace(len(a), p, seed=7, chunk_rows=2)
    A = sub.dense().double().numpy()
    w = np.array(w0)
    b = eps * (np.abs(np.linalg.lstsq(A, w, rcond=None)[0]) + 1)
    f = lambda x: 0.5 * float(np.sum(np.array(a) * x ** 2))  # noqa: E731
    best = max(f(w + A @ (np.array(s) * b)) for s in itertools.product((-1, 1), repeat=p))
    expected = 100 * (best - f(w)) / (1 + f(w))
    assert epsilon_sharpness(model, quad_loss, eps, dim=p, seed=7, subspace=sub) == pytest.approx(expected, rel=1e-3)


def test_chunked_subspace_equals_the_dense_matrix():
    sub = RandomSubspace(1000, 5, seed=3, chunk_rows=64)
    A = sub.dense().double()
    assert torch.allclose(A.norm(dim=0), torch.ones(5, dtype=torch.float64), atol=1e-6)
    assert (A >= 0).all()
    z, v = torch.randn(5, dtype=torch.float64), torch.randn(1000)
    assert torch.allclose(sub.matvec(z).double(), A @ z, atol=1e-4)
    assert torch.allclose(sub.rmatvec(v), A.T @ v.double(), atol=1e-3)
    lstsq = torch.linalg.lstsq(A, v.double().unsqueeze(1)).solution.squeeze(1)
    assert torch.allclose(sub.pinv_apply(v), lstsq, rtol=1e-3, atol=1e-3)
    again = RandomSubspace(1000, 5, seed=3, chunk_rows=64)
    assert torch.equal(again.dense(), sub.dense())  # seeded
    for budget in (0.0, 1000 * 5 * 2 / 2**30):  # regenerated, and kept at float16
        other = RandomSubspace(1000, 5, seed=3, chunk_rows=64, cache_gib=budget)
        assert torch.equal(other.dense(), sub.dense()) and torch.equal(other.matvec(z), sub.matvec(z))
    assert sub._cache_dtype == torch.float32 and RandomSubspace(1000, 5, cache_gib=0.0)._cache is None


def test_flatter_quadratic_is_less_sharp_and_eps_orders_it():
    sharp, flat = Quadratic([10.0, 10.0], [0.2, 0.2]), Quadratic([1.0, 1.0], [0.2, 0.2])
    s = sharpness_table(sharp, quad_loss, dim=None)
    f = sharpness_table(flat, quad_loss, dim=None)
    assert all(s[e] > f[e] for e in s) and s[5e-3] > s[1e-3] > s[5e-4] > 0


def test_hessian_top_eigenvalue_of_a_quadratic():
    model = Quadratic([1.0, 7.0, 3.0], [0.1, 0.2, 0.3])
    assert hessian_top_eigenvalue(model, quad_loss, iters=50, tol=1e-6) == pytest.approx(7.0, rel=1e-3)


def _watched(loss_fn, pruned, seen):
    """`loss_fn`, also noting whether the pruned coordinates were exactly zero at every evaluation."""
    def watched(model):
        seen.append(bool((model.w.detach()[pruned] == 0).all()))
        return loss_fn(model)
    return watched


def test_pruned_weights_stay_out_of_the_search_and_the_hessian():
    a, w0, eps = [1.0, 4.0, 2.0, 3.0], [0.5, 0.0, 2.0, 0.0], 1e-2  # coordinates 1 and 3 pruned (zero)
    masks = {"w": torch.tensor([True, False, True, False])}
    seen = []
    model = Quadratic(a, w0)
    # the maximum is the corner of the unpruned coordinates' box; the pruned ones stay at 0
    f0 = 0.5 * (1.0 * 0.5 ** 2 + 2.0 * 2.0 ** 2)
    fmax = 0.5 * (1.0 * (0.5 + eps * 1.5) ** 2 + 2.0 * (2.0 + eps * 3.0) ** 2)
    value = epsilon_sharpness(model, _watched(quad_loss, [1, 3], seen), eps, dim=None, masks=masks)
    assert value == pytest.approx(100 * (fmax - f0) / (1 + f0), rel=1e-4) and seen and all(seen)
    # in a random subspace: the same number as the model that has only the unpruned weights, with the same A
    seen.clear()
    masked = sharpness_table(model, _watched(quad_loss, [1, 3], seen), (5e-2,), dim=2, seed=3, masks=masks)
    reduced = sharpness_table(Quadratic([1.0, 2.0], [0.5, 2.0]), quad_loss, (5e-2,), dim=2, seed=3)
    assert masked[5e-2] == pytest.approx(reduced[5e-2], rel=1e-6) and all(seen)
    assert model.w.tolist() == w0
    # the largest curvature among the kept weights is 2, not the pruned coordinates' 4 or 3
    assert hessian_top_eigenvalue(model, quad_loss, iters=50, tol=1e-8, masks=masks) == pytest.approx(2.0, rel=1e-3)
    assert hessian_top_eigenvalue(model, quad_loss, iters=50, tol=1e-8) == pytest.approx(4.0, rel=1e-3)
    with pytest.raises(ValueError, match="masks name weights the model lacks"):
        epsilon_sharpness(model, quad_loss, eps, dim=None, masks={"v": torch.tensor([True])})


def test_hugging_face_batches_and_bad_epsilon(smoke_config):
    from flatcompress.data import encode, load_task, pad_collate
    from flatcompress.models import load_model, load_tokenizer
    from flatcompress.tasks import get_task

    task = get_task("rotten_tomatoes")
    batch = pad_collate(encode(load_task(task, max_train_examples=16).train, load_tokenizer("tiny"), 32))
    torch.manual_seed(0)
    model = load_model("tiny", task)
    before = [p.detach().clone() for p in model.parameters()]
    loss_fn = batches_loss([batch])
    table = sharpness_table(model, loss_fn, dim=10, maxiter=3)
    assert all(v >= 0 for v in table.values()) and table[5e-3] >= table[5e-4]
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert hessian_top_eigenvalue(model, loss_fn, iters=5) > 0
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        epsilon_sharpness(model, loss_fn, 0.0)


def test_sharpness_record_for_a_finetuned_run(smoke_config, tmp_path, monkeypatch):
    from flatcompress import finetune
    from flatcompress.flatness.sharpness_records import measure_sharpness

    run = finetune(smoke_config(), results_dir=tmp_path, progress=False, save_checkpoint=True)
    record = measure_sharpness(run, results_dir=tmp_path, dim=8, n_examples=16, maxiter=2, hessian_iters=3)
    assert tmp_path / record["finetune_record"] == run.path and set(record["sharpness"]) == {"0.005", "0.001", "0.0005"}
    assert record["sharpness"]["0.005"] >= record["sharpness"]["0.0005"] >= 0 and record["n_examples"] == 16
    monkeypatch.setattr("flatcompress.flatness.sharpness_records.sharpness_table", None)  # no second measurement
    cached = finetune(smoke_config(), results_dir=tmp_path, progress=False)
    again = measure_sharpness(cached, results_dir=tmp_path, dim=8, n_examples=16, maxiter=2, hessian_iters=3)
    assert again["sharpness"] == record["sharpness"]


def test_a_killed_sharpness_measurement_resumes_after_its_last_finished_epsilon(smoke_config, tmp_path, monkeypatch,
                                                                               capsys):
    from flatcompress import finetune
    from flatcompress.flatness import sharpness
    from flatcompress.flatness.sharpness_records import measure_sharpness

    settings = {"dim": 8, "n_examples": 16, "maxiter": 2, "hessian_iters": 3}
    run = finetune(smoke_config(), results_dir=tmp_path / "whole", progress=False, save_checkpoint=True)
    whole = measure_sharpness(run, results_dir=tmp_path / "whole", **settings)  # uninterrupted
    run = finetune(smoke_config(), results_dir=tmp_path / "killed", progress=False, save_checkpoint=True)
    searched = []
    real = sharpness.epsilon_sharpness

    def killed_at_the_second(model, loss_fn, eps, *args):
        if len(searched) == 1:
            raise KeyboardInterrupt  # the process is stopped during the second ε's search
        searched.append(eps)
        return real(model, loss_fn, eps, *args)

    monkeypatch.setattr(sharpness, "epsilon_sharpness", killed_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        measure_sharpness(run, results_dir=tmp_path / "killed", **settings)
    written = list((tmp_path / "killed" / "sharpness").rglob("*.json"))
    partial = [p for p in written if p.name.endswith(".partial.json")]
    assert searched == [5e-3] and len(partial) == 1 and written == partial  # no record yet, the first ε kept

    def resumed(model, loss_fn, eps, *args):
        searched.append(eps)
        return real(model, loss_fn, eps, *args)

    monkeypatch.setattr(sharpness, "epsilon_sharpness", resumed)
    capsys.readouterr()
    again = measure_sharpness(run, results_dir=tmp_path / "killed", **settings, progress=True)
    assert searched == [5e-3, 1e-3, 5e-4]  # the finished ε is not searched again
    lines = capsys.readouterr().out.splitlines()  # progress: a line as each ε's search ends
    assert [line.split(": ")[1].split(",")[0] for line in lines] == ["ε 0.001", "ε 0.0005"]
    assert lines[0].startswith("ε-sharpness of rotten_tomatoes adamw seed 0") and "(2/3 ε" in lines[0]
    assert again["sharpness"] == whole["sharpness"] and again["key"] == whole["key"]  # resumed = uninterrupted
    assert again["hessian_top_eigenvalue"] == whole["hessian_top_eigenvalue"] and not partial[0].exists()


def test_batch_by_batch_gradients_and_hessian_products_equal_the_whole_loss():
    """`batches_loss` hands out one term per batch; taking gradients and H v term by term (the memory of one
    batch) gives what the summed loss gives."""
    from flatcompress.data import encode, load_task, pad_collate
    from flatcompress.flatness.sharpness import _loss_and_grad
    from flatcompress.models import load_model, load_tokenizer
    from flatcompress.tasks import get_task

    task = get_task("rotten_tomatoes")
    features = encode(load_task(task, max_train_examples=24).train, load_tokenizer("tiny"), 32)
    batches = [pad_collate(features[i:i + 8]) for i in range(0, 24, 8)]
    torch.manual_seed(0)
    model = load_model("tiny", task).eval()
    parts = batches_loss(batches)
    whole = lambda m: parts(m)  # the same sum, without `parts`: one graph over every batch
    params = [p for p in model.parameters() if p.requires_grad]
    (loss_a, grad_a), (loss_b, grad_b) = _loss_and_grad(model, params, parts), _loss_and_grad(model, params, whole)
    assert loss_a == pytest.approx(loss_b, rel=1e-6) and torch.allclose(grad_a, grad_b, atol=1e-6)
    assert hessian_top_eigenvalue(model, parts, iters=5) == pytest.approx(
        hessian_top_eigenvalue(model, whole, iters=5), rel=1e-4)
