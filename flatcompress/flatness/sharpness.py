r"""How sharp is a minimum? The paper's ε-sharpness (§2.1, A.2, Tables 3-4) and the top Hessian eigenvalue.

**ε-sharpness** (Keskar et al. 2017, as Mehta et al. implement it and the paper reports it). In a random
p-dimensional subspace spanned by the columns of $A \in \mathbb{R}^{n \times p}$ (entries uniform on
[0, 1), columns scaled to unit norm), search the box

$$C_\epsilon = \{ z \in \mathbb{R}^p : |z_i| \le \epsilon\,(|(A^+ w)_i| + 1) \}$$

for the largest loss, with L-BFGS-B for 10 iterations from z = 0, and report

$$\phi_{w,f}(\epsilon, A) = 100 \cdot \frac{\max_{z \in C_\epsilon} f(w + A z) - f(w)}{1 + f(w)}.$$

Lower is flatter. The paper uses ε ∈ {5e-3, 1e-3, 5e-4}; Mehta's default p = 100. A dense A for
BERT-base (110M x 100 floats) would take 44 GB, so `RandomSubspace` keeps A in float16 on the model's device
when it fits (a GPU's memory) and otherwise regenerates it chunk by chunk from a seed for each product. $A^+ w$ is the least-squares solution
$(A^\top A)^{-1} A^\top w$, with the p x p Gram matrix accumulated in the same chunked pass.

**Top Hessian eigenvalue**: power iteration on Hessian-vector products (Pearlmutter's trick, two
backward passes), a second, independent view of curvature at the same point.

Both evaluate `loss_fn(model)` with the model in eval mode (no dropout), so f is deterministic.

**Pruned models** (Table 4). With `masks`, both look only at the weights a pruned model still has: the search moves
the unpruned coordinates (A has one row per unpruned weight: $w + P A z$, with $P$ the embedding of the unpruned
coordinates into all of them, so pruned weights stay exactly zero), and the power iteration runs on $P^\top H P$.
Tensors without a mask (embeddings, biases, LayerNorm, the head) are unpruned.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from scipy import optimize

__all__ = ["RandomSubspace", "epsilon_sharpness", "sharpness_table", "hessian_top_eigenvalue", "batches_loss",
           "PAPER_EPSILONS"]

PAPER_EPSILONS = (5e-3, 1e-3, 5e-4)
LossFn = Callable[[torch.nn.Module], torch.Tensor]
Masks = Mapping[str, torch.Tensor]


class RandomSubspace:
    """The n x p projection A, generated from `seed` in chunks of `chunk_rows` rows, kept on `device`.

    Chunks come from a counter-seeded SFC64 generator (on the host, so every device gets the same numbers) and are
    rounded to float16 precision, so the matrix is the same whether it is kept in memory or regenerated for every
    product. It is kept as float32 when n x p x 4 bytes fits `cache_gib` (fastest: MiniLM-L6 needs 8.5 GiB), as
    float16 when n x p x 2 bytes fits (4.2 GiB for MiniLM-L6), and regenerated otherwise (BERT-base needs 20 GiB
    even at float16). On a GPU the budget is also capped at 80% of its free memory, so an H100 keeps BERT-base's
    matrix and every product runs on the device.
    """

    def __init__(self, n: int, p: int = 100, seed: int = 0, chunk_rows: int = 1 << 16, cache_gib: float = 6.0,
                 device: torch.device | str = "cpu") -> None:
        if p < 1 or n < 1:
            raise ValueError(f"need n >= 1 and p >= 1, got n={n}, p={p}")
        self.n, self.p, self.seed, self.chunk_rows, self.device = n, p, seed, chunk_rows, torch.device(device)
        budget = cache_gib * 2**30
        if self.device.type == "cuda":
            budget = min(budget, 0.8 * torch.cuda.mem_get_info(self.device)[0])
        self._cache_dtype = torch.float32 if n * p * 4 <= budget else torch.float16 if n * p * 2 <= budget else None
        self._cache: list[torch.Tensor] | None = [] if self._cache_dtype is not None else None
        gram = torch.zeros(p, p, dtype=torch.float64, device=self.device)
        for _, raw in self._raw_chunks():
            gram += (raw.T @ raw).double()
        gram = gram.cpu()
        self.inv_norms = 1.0 / gram.diagonal().sqrt()  # columns of A = columns of raw / their norms
        self.gram = gram * self.inv_norms[:, None] * self.inv_norms[None, :]  # A^T A

    def _raw_chunks(self) -> Iterable[tuple[int, torch.Tensor]]:
        cached = self._cache is not None and len(self._cache) > 0
        for k, start in enumerate(range(0, self.n, self.chunk_rows)):
            if cached:
                yield start, self._cache[k].float()  # type: ignore[index]
                continue
            rows = min(self.chunk_rows, self.n - start)
            generator = np.random.Generator(np.random.SFC64([self.seed, k]))
            half = torch.from_numpy(generator.random((rows, self.p), dtype=np.float32)).half().to(self.device)
            chunk = half.float()
            if self._cache is not None:
                self._cache.append(chunk if self._cache_dtype == torch.float32 else half)
            yield start, chunk

    def dense(self) -> torch.Tensor:
        """The whole of A (small n only: tests and toy examples), on the host."""
        return torch.cat([raw.cpu() for _, raw in self._raw_chunks()]) * self.inv_norms.float()

    def matvec(self, z: torch.Tensor) -> torch.Tensor:
        """A z, an n-vector on the subspace's device."""
        scaled = (z.double().cpu() * self.inv_norms).float().to(self.device)
        out = torch.empty(self.n, device=self.device)
        for start, raw in self._raw_chunks():
            out[start:start + raw.shape[0]] = raw @ scaled
        return out

    def rmatvec(self, v: torch.Tensor) -> torch.Tensor:
        """A^T v, a p-vector (float64, on the host)."""
        acc = torch.zeros(self.p, dtype=torch.float64, device=self.device)
        v = v.float().to(self.device)
        for start, raw in self._raw_chunks():
            acc += (raw.T @ v[start:start + raw.shape[0]]).double()
        return acc.cpu() * self.inv_norms

    def pinv_apply(self, w: torch.Tensor) -> torch.Tensor:
        """A^+ w = argmin_z ||A z - w||, via the normal equations (A has full column rank)."""
        return torch.linalg.solve(self.gram, self.rmatvec(w))


def _trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def _kept(model: torch.nn.Module, masks: Masks | None) -> torch.Tensor | None:
    """The positions, in the flat vector of trainable weights, of those `masks` keep (None: all of them)."""
    if masks is None:
        return None
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    unknown = set(masks) - {n for n, _ in named}
    if unknown:
        raise ValueError(f"masks name weights the model lacks: {sorted(unknown)[:3]}")
    keep = torch.cat([masks[n].to(p.device, torch.bool).reshape(-1) if n in masks
                      else torch.ones(p.numel(), dtype=torch.bool, device=p.device) for n, p in named])
    return keep.nonzero().squeeze(1)


def _parts(loss_fn: LossFn) -> Sequence[LossFn]:
    """The terms whose sum is `loss_fn` (`batches_loss` has one per batch), so that gradients and Hessian-vector
    products can be taken one term at a time: the same numbers with the memory of one batch."""
    return getattr(loss_fn, "parts", None) or [loss_fn]


def _loss_and_grad(model: torch.nn.Module, params: list[torch.nn.Parameter], loss_fn: LossFn) -> tuple[float, torch.Tensor]:
    for p in params:
        p.grad = None
    loss = 0.0
    for part in _parts(loss_fn):
        value = part(model)
        value.backward()
        loss += float(value.detach())
    grad = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in params])
    return loss, grad  # on the model's device


def epsilon_sharpness(model: torch.nn.Module, loss_fn: LossFn, epsilon: float, dim: int | None = 100, seed: int = 0,
                      maxiter: int = 10, subspace: RandomSubspace | None = None, masks: Masks | None = None) -> float:
    """φ(ε) of the model at its current weights (see the module docstring); `dim=None` searches the full space,
    `masks` only the weights they keep.

    The model's weights are restored exactly afterwards.
    """
    if epsilon <= 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    params = _trainable(model)
    was_training = model.training
    model.eval()
    device = params[0].device
    with torch.no_grad():
        w0 = torch.nn.utils.parameters_to_vector(params).detach().float()  # on the model's device
    kept = _kept(model, masks)
    searched = w0 if kept is None else w0[kept]  # the coordinates the search moves
    if dim is not None and subspace is None:
        subspace = RandomSubspace(searched.numel(), dim, seed, device=device)
    if subspace is not None and subspace.n != searched.numel():
        raise ValueError(f"the subspace has {subspace.n} rows for {searched.numel()} searched weights")
    bound_base = subspace.pinv_apply(searched) if subspace is not None else searched.double().cpu()
    bounds = (epsilon * (bound_base.abs() + 1.0)).numpy()  # |z_i| <= eps (|(A^+ w)_i| + 1)

    def set_weights(z: np.ndarray) -> None:
        z_t = torch.from_numpy(z)
        delta = subspace.matvec(z_t) if subspace is not None else z_t.float().to(device)  # A z
        if kept is not None:  # P A z: zero on the pruned weights
            delta = torch.zeros_like(w0).index_copy_(0, kept, delta.to(device))
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters((w0 + delta.to(device)), params)  # w + A z

    def negative(z: np.ndarray) -> tuple[float, np.ndarray]:
        set_weights(z)
        loss, grad = _loss_and_grad(model, params, loss_fn)
        grad = grad if kept is None else grad[kept]  # P^T g
        grad_z = subspace.rmatvec(grad) if subspace is not None else grad.double().cpu()  # A^T g, on the host (scipy)
        return -loss, -grad_z.numpy()

    try:
        f0, _ = _loss_and_grad(model, params, loss_fn)
        result = optimize.minimize(negative, np.zeros(len(bounds)), method="L-BFGS-B", jac=True,
                                   bounds=optimize.Bounds(-bounds, bounds), options={"maxiter": maxiter})
        set_weights(result.x)
        with torch.no_grad():
            f_max = float(loss_fn(model))
    finally:
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(w0, params)
        for p in params:
            p.grad = None
        model.train(was_training)
    return 100.0 * (f_max - f0) / (1.0 + f0)


def sharpness_table(model: torch.nn.Module, loss_fn: LossFn, epsilons: Sequence[float] = PAPER_EPSILONS,
                    dim: int | None = 100, seed: int = 0, maxiter: int = 10, cache_gib: float = 6.0,
                    masks: Masks | None = None, done: Mapping[float, float] | None = None,
                    save: Callable[[dict[float, float]], None] | None = None) -> dict[float, float]:
    """φ(ε) for each ε, sharing one random subspace (kept in memory within `cache_gib`, see RandomSubspace);
    with `masks`, over the weights they keep.

    Each ε's search starts from the model's weights and restores them, so the searches are independent: `done`
    holds the φ of an interrupted measurement's finished ε (they are not searched again), and `save` receives every
    φ found so far after each ε (what a resumed measurement passes back as `done`)."""
    found = dict(done or {})
    todo = [eps for eps in epsilons if eps not in found]
    if todo:
        params = _trainable(model)
        kept = _kept(model, masks)
        n = sum(p.numel() for p in params) if kept is None else kept.numel()
        subspace = None if dim is None else RandomSubspace(n, dim, seed, cache_gib=cache_gib, device=params[0].device)
    for eps in todo:
        found[eps] = epsilon_sharpness(model, loss_fn, eps, dim, seed, maxiter, subspace, masks)
        if save is not None:
            save(found)
    return {eps: found[eps] for eps in epsilons}


def hessian_top_eigenvalue(model: torch.nn.Module, loss_fn: LossFn, iters: int = 20, tol: float = 1e-3,
                           seed: int = 0, masks: Masks | None = None) -> float:
    """The largest-magnitude eigenvalue of the loss Hessian, by power iteration on H v; with `masks`, of the
    Hessian restricted to the weights they keep ($P^\top H P$)."""
    params = _trainable(model)
    named = dict(model.named_parameters())
    names = [n for n, p in named.items() if p.requires_grad]
    keep = [None if masks is None or n not in masks else masks[n].to(named[n].device, named[n].dtype) for n in names]
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=generator).to(p) for p in params]  # drawn on the host: the same v anywhere
    v = [x if m is None else x * m for x, m in zip(v, keep)]
    norm = torch.sqrt(sum((x * x).sum() for x in v))
    v = [x / norm for x in v]
    eigenvalue = 0.0
    # fused attention kernels have no second derivative: use the math implementation of attention
    from torch.nn.attention import SDPBackend, sdpa_kernel

    try:
        with sdpa_kernel([SDPBackend.MATH]):
            eigenvalue = _power_iteration(model, loss_fn, params, v, iters, tol, keep)
    finally:
        model.train(was_training)
    return eigenvalue


def _power_iteration(model: torch.nn.Module, loss_fn: LossFn, params: list[torch.nn.Parameter],
                     v: list[torch.Tensor], iters: int, tol: float, keep: Sequence[torch.Tensor | None]) -> float:
    eigenvalue = 0.0
    for _ in range(iters):
        hv = [torch.zeros_like(p) for p in params]
        for part in _parts(loss_fn):  # H v summed over the loss's terms, one graph at a time
            grads = torch.autograd.grad(part(model), params, create_graph=True, allow_unused=True)
            used = [(i, g) for i, g in enumerate(grads) if g is not None]
            terms = torch.autograd.grad([g for _, g in used], [params[i] for i, _ in used],
                                        grad_outputs=[v[i] for i, _ in used], allow_unused=True)
            for (i, _), term in zip(used, terms):
                if term is not None:
                    hv[i] += term
        hv = [x if m is None else x * m for x, m in zip(hv, keep)]  # P^T H P v: the pruned weights stay out
        new = float(sum((a * b).sum() for a, b in zip(hv, v)))
        norm = torch.sqrt(sum((x * x).sum() for x in hv))
        v = [x / norm for x in hv]
        converged = abs(new - eigenvalue) <= tol * max(abs(new), 1e-12)
        eigenvalue = new
        if converged:
            break
    return eigenvalue


def batches_loss(batches: Sequence[dict[str, torch.Tensor]]) -> LossFn:
    """loss_fn for Hugging Face models: the example-weighted mean of `model(**batch).loss` over `batches`; its
    `parts` attribute holds one weighted term per batch (see `_parts`)."""
    total = sum(int(b["input_ids"].shape[0]) for b in batches)

    def part(batch: dict[str, torch.Tensor]) -> LossFn:
        def batch_loss(model: torch.nn.Module) -> torch.Tensor:
            device = next(model.parameters()).device
            out = model(**{k: v.to(device) for k, v in batch.items()})
            return out.loss.float() * (batch["input_ids"].shape[0] / total)
        return batch_loss

    parts = [part(b) for b in batches]

    def loss_fn(model: torch.nn.Module) -> torch.Tensor:
        return sum(p(model) for p in parts)

    loss_fn.parts = parts  # type: ignore[attr-defined]
    return loss_fn
