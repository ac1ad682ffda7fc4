r"""Sharpness-Aware Minimization (Foret et al., 2021), as the paper uses it (§2.1).

SAM seeks parameters whose whole neighbourhood has low loss:

$$\min_w \max_{\|\epsilon\|_2 \le \rho} L(w + \epsilon).$$

A first-order approximation of the inner maximum gives the perturbation (paper eq. 1)

$$\hat\epsilon(w) = \rho \, \frac{\nabla_w L(w)}{\|\nabla_w L(w)\|_2},$$

and the update uses the gradient taken at the perturbed point (paper eq. 2)

$$g_{\mathrm{SAM}} = \nabla_w L(w)\big|_{w + \hat\epsilon(w)},$$

handed to a base optimizer (AdamW in the paper, ρ = 0.05). Adaptive SAM (ASAM, Kwon et al.
2021) scales the neighbourhood by the weights, $\hat\epsilon = \rho\, T_w^2 g / \|T_w g\|_2$ with
$T_w = |w|$.

Compared with davda54/sam, whose API this follows (`first_step`, `second_step`, `step(closure)`):
- `step(closure)` follows torch's closure contract: the closure zeroes the gradients, runs
  forward and backward and returns the loss; SAM calls it twice (at w, then at w + ε̂).
- Both passes see the same dropout masks: the random state is replayed for the second pass
  (`replay_dropout=False` turns this off), as google-research/sam does with one JAX key.
- Weights are restored by copying the saved values (bit for bit), not by subtracting ε̂, also when the second
  pass raises (an fp16 overflow skips the step, `flatcompress.device.LossScaler`).
- Weights whose gradient is exactly zero (pruned weights under a mask) get no perturbation.
- `state_dict()` is the base optimizer's, and schedulers act on the shared `param_groups`.
- Memory: one saved copy of the perturbed parameters.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch

from flatcompress.optim import OptimizerSpec, fused, register_optimizer

__all__ = ["SAM", "check_rho"]


class SAM(torch.optim.Optimizer):
    """Wrap `base_optimizer` (a class, AdamW by default) with a sharpness-aware two-pass step."""

    def __init__(self, params: Iterable, base_optimizer: type[torch.optim.Optimizer] = torch.optim.AdamW,
                 rho: float = 0.05, adaptive: bool = False, replay_dropout: bool = True, **kwargs: Any) -> None:
        check_rho(rho)
        super().__init__(params, dict(rho=rho, adaptive=adaptive, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self.replay_dropout = replay_dropout

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Save w and move to w + ε̂(w) (eq. 1)."""
        grad_norm = self._grad_norm()
        if not torch.isfinite(grad_norm):
            raise FloatingPointError(f"SAM: the gradient norm is {grad_norm.item()} at the first step; the loss or "
                                     "its gradient is not finite (lower the learning rate or check the data)")
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                self.state[p]["old_p"] = p.detach().clone()
            scale = float(group["rho"] / (grad_norm + 1e-12))
            grads = [p.grad for p in params]
            if group["adaptive"]:  # ε̂ = ρ w² g / ‖|w| g‖
                grads = torch._foreach_mul(grads, torch._foreach_mul(params, params))
            torch._foreach_add_(params, grads, alpha=scale)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore w exactly and let the base optimizer step with the gradient taken at w + ε̂ (eq. 2)."""
        self._restore()
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def _restore(self) -> None:
        """w + ε̂ back to w, bit for bit."""
        for group in self.param_groups:
            params = [p for p in group["params"] if "old_p" in self.state[p]]
            if params:
                torch._foreach_copy_(params, [self.state[p].pop("old_p") for p in params])

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:  # type: ignore[override]
        """One SAM update: closure at w, perturb, closure at w + ε̂ (same dropout masks), restore, step.

        Returns the loss at w.
        """
        if closure is None:
            raise ValueError("SAM.step needs a closure that zeroes the gradients, runs forward and backward, and "
                             "returns the loss (or call first_step() and second_step() yourself)")
        rng = _rng_state() if self.replay_dropout else None
        with torch.enable_grad():
            loss = closure()
        self.first_step()
        if rng is not None:
            _set_rng_state(rng)
        try:
            with torch.enable_grad():
                closure()
        except BaseException:  # e.g. an fp16 overflow skips the step: leave the weights where they were
            self._restore()
            raise
        self.second_step()
        return loss

    def _grad_norm(self) -> torch.Tensor:
        """‖g‖₂ over every parameter (‖T_w g‖₂ for ASAM), on the device of the first parameter."""
        device = self.param_groups[0]["params"][0].device
        norms = []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            grads = [p.grad for p in params]
            if group["adaptive"]:
                grads = torch._foreach_mul(grads, torch._foreach_abs(params))
            norms += [n.to(device) for n in torch._foreach_norm(grads)] if grads else []
        return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros((), device=device)

    def state_dict(self) -> dict[str, Any]:
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups


def _rng_state() -> tuple:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return torch.random.get_rng_state(), cuda


def _set_rng_state(state: tuple) -> None:
    cpu, cuda = state
    torch.random.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


def check_rho(rho: float) -> None:
    """ρ is a radius: it must be >= 0 (ρ = 0 is AdamW, bit for bit)."""
    if rho < 0:
        raise ValueError(f"rho must be >= 0, got {rho}")


def _build(params: Iterable, lr: float, weight_decay: float, eps: float, **kwargs: Any) -> SAM:
    params = list(params)
    return SAM(params, torch.optim.AdamW, lr=lr, weight_decay=weight_decay, eps=eps, fused=fused(params), **kwargs)


register_optimizer(OptimizerSpec("sam", _build, accepts=("rho", "adaptive", "replay_dropout", "betas"),
                                 description="SAM around AdamW (the paper: rho = 0.05)",
                                 check=lambda kwargs: check_rho(kwargs.get("rho", 0.05))))
