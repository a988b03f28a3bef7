"""Loss functions and TD targets shared by the agents, as pure functions with shape contracts.

* :func:`huber` — ``L_κ(u)``, elementwise.
* :func:`quantile_huber_loss` — the quantile regression loss of QR-DQN/IQN (Dabney et al. 2018),
  with the paper's division by ``κ``; :func:`quantile_huber_loss_and_grad` returns it with its
  gradient, for training loops that skip autograd on the loss.
* :func:`expectile_loss` — the asymmetric squared loss of IQL/IDQL/RIQL.
* :func:`distributional_td_target` — ``r + γ^k (1 − d) Z(s′)`` for a whole set of quantiles.

Every function checks its inputs' shapes and raises ``ValueError`` naming the shapes it got and the
ones it needs (the model is sb3-contrib's ``quantile_huber_loss``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def huber(u: torch.Tensor, kappa: float = 1.0) -> torch.Tensor:
    """The Huber function, elementwise: ``½u²`` if ``|u| ≤ κ``, else ``κ(|u| − ½κ)``.

    Args:
        u: any shape.
        kappa: the threshold ``κ > 0``.

    Returns:
        A tensor shaped like ``u``.
    """
    if kappa <= 0:
        raise ValueError(f"kappa must be > 0, got {kappa}")
    return F.huber_loss(u, torch.zeros_like(u), reduction="none", delta=kappa)


def quantile_huber_loss(
    pred: torch.Tensor, target: torch.Tensor, taus: torch.Tensor, kappa: float = 1.0
) -> torch.Tensor:
    """Quantile Huber loss of IQN (Dabney, Ostrovski, Silver, Munos 2018, eq. 10).

    With ``u_ij = target_j − pred_i`` and ``ρ^κ_τ(u) = |τ − 1{u < 0}|·L_κ(u)/κ``, returns

        mean_b  Σ_i  mean_j  ρ^κ_{τ_i}(u_ij)

    i.e. a *sum* over the ``N`` predicted quantiles and a *mean* over the ``M`` target samples
    (the loss scales with ``N``, not with ``M``), then a batch mean. The target is treated as a
    constant: gradients flow into ``pred`` only, and the indicator uses a detached ``u``.

    Args:
        pred: ``(B, N)`` predicted quantiles ``Z_{τ_i}(s, a)``.
        target: ``(B, M)`` target samples ``r + γ Z_{τ'_j}(s', a*)`` (detached by the caller or not).
        taus: ``(B, N)`` the fractions ``τ_i`` of ``pred``; ``(N,)`` (fixed fractions, e.g. QR-DQN
            midpoints) is broadcast over the batch.
        kappa: Huber threshold ``κ > 0``; ``κ → 0`` approaches the pure quantile (pinball) loss.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: wrong ranks, mismatched batch sizes, ``taus`` not matching ``pred``, or
            ``kappa ≤ 0``; the message names both shapes.
    """
    _check_quantile_huber(pred, target, taus, kappa)
    loss: torch.Tensor = _QuantileHuber.apply(
        pred, target.detach().to(pred.dtype), taus.detach().to(pred.dtype), float(kappa)
    )
    return loss


def quantile_huber_loss_and_grad(
    pred: torch.Tensor, target: torch.Tensor, taus: torch.Tensor, kappa: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`quantile_huber_loss` and its gradient with respect to ``pred``, without autograd.

    For a hot training loop: one pass computes both, and the caller back-propagates the
    gradient through the network itself, e.g. ``torch.autograd.grad(pred, params, grad)``. This
    skips the autograd node of the loss and the ``backward()`` call on a scalar.

    Args:
        pred, target, taus, kappa: as in :func:`quantile_huber_loss` (all treated as constants).

    Returns:
        ``(loss, grad)``: the scalar loss and ``∂loss/∂pred`` shaped ``(B, N)``, both detached.

    Raises:
        ValueError: as :func:`quantile_huber_loss`.
    """
    _check_quantile_huber(pred, target, taus, kappa)
    with torch.no_grad():
        return _quantile_huber_value_and_grad(
            pred.detach(), target.detach().to(pred.dtype), taus.detach().to(pred.dtype), float(kappa)
        )


def _check_quantile_huber(pred: torch.Tensor, target: torch.Tensor, taus: torch.Tensor, kappa: float) -> None:
    if pred.dim() != 2 or target.dim() != 2:
        raise ValueError(
            f"quantile_huber_loss needs pred (B, N) and target (B, M), got pred {tuple(pred.shape)} "
            f"and target {tuple(target.shape)}"
        )
    if pred.shape[0] != target.shape[0]:
        raise ValueError(
            f"quantile_huber_loss: batch sizes differ, pred {tuple(pred.shape)} vs target {tuple(target.shape)}"
        )
    if taus.shape != pred.shape and not (taus.dim() == 1 and taus.shape[0] == pred.shape[1]):
        raise ValueError(
            f"quantile_huber_loss: taus must be (B, N) like pred or (N,), got taus {tuple(taus.shape)} "
            f"and pred {tuple(pred.shape)}"
        )
    if kappa <= 0:
        raise ValueError(f"quantile_huber_loss: kappa must be > 0, got {kappa}")


def _quantile_huber_value_and_grad(
    pred: torch.Tensor, target: torch.Tensor, taus: torch.Tensor, kappa: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and ``∂loss/∂pred`` of :func:`quantile_huber_loss` for checked, detached inputs.

    Autograd through ``where``/``clamp``/``huber_loss`` builds boolean masks, which are slow on
    CPU; this writes the loss with two identities and works in place on the ``(B, N, M)``
    temporaries (the cost of the whole loss). With ``u = target − pred``, ``c = clamp(u, −κ, κ)``:

    * ``L_κ(u) = c·(u − ½c)`` and ``dL_κ/du = c``;
    * ``|τ − 1{u < 0}|·c = ½c + (τ − ½)·|c|`` (``sign(c) = sign(u)``; at ``u = 0`` both sides vanish).

    So ``loss = s·Σ w·c·(u − ½c)`` and ``∂loss/∂pred_i = −s·Σ_j w_ij·c_ij`` with ``s = 1/(B·M·κ)``.
    """
    b, n = pred.shape
    u = target.unsqueeze(1) - pred.unsqueeze(2)  # (B, N, M)
    c = u.clamp(-kappa, kappa)  # (B, N, M)
    tau_i = taus.reshape(-1 if taus.dim() == 2 else 1, n, 1)  # (B|1, N, 1)
    wc = c.abs().mul_(tau_i - 0.5).add_(c, alpha=0.5)  # w·c, (B, N, M)
    huber = u.sub_(c, alpha=0.5)  # u − ½c (u is not needed any more), (B, N, M)
    scale = 1.0 / (b * target.shape[1] * kappa)
    loss = torch.dot(wc.view(-1), huber.view(-1)) * scale  # Σ w·c·(u − ½c), one pass
    return loss, wc.sum(dim=2).mul_(-scale)


class _QuantileHuber(torch.autograd.Function):
    """Autograd wrapper of :func:`_quantile_huber_value_and_grad`: the gradient is computed with
    the loss (it costs one row sum of a temporary the loss needs anyway) and scaled in backward;
    the target and the fractions are constants."""

    @staticmethod
    def forward(
        ctx: Any, pred: torch.Tensor, target: torch.Tensor, taus: torch.Tensor, kappa: float
    ) -> torch.Tensor:
        loss, grad = _quantile_huber_value_and_grad(pred, target, taus, kappa)
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (grad_pred,) = ctx.saved_tensors
        return grad_pred * grad, None, None, None


def expectile_loss(diff: torch.Tensor, expectile: float, *, reduction: str = "mean") -> torch.Tensor:
    """Expectile regression loss ``|τ − 1{diff < 0}|·diff²`` (IQL, Kostrikov et al. 2022, eq. 5).

    With ``diff = target − prediction``, ``τ > 0.5`` weighs under-estimates more, so the
    prediction moves toward an upper expectile; ``τ = 0.5`` is half the squared error.

    Args:
        diff: any shape, ``target − prediction``.
        expectile: ``τ ∈ (0, 1)``.
        reduction: ``"mean"`` (a scalar) or ``"none"`` (elementwise, shaped like ``diff``).

    Returns:
        The mean loss, or the elementwise loss for ``reduction="none"``.
    """
    if not 0.0 < expectile < 1.0:
        raise ValueError(f"expectile must lie in (0, 1), got {expectile}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    # |τ − 1{diff < 0}| = ½ + sign(diff)·(τ − ½) wherever diff ≠ 0 (and diff² = 0 elsewhere);
    # arithmetic instead of a boolean mask, which is slow on CPU.
    weight = torch.sign(diff.detach()).mul_(expectile - 0.5).add_(0.5)
    loss = weight * diff.square()
    return loss.mean() if reduction == "mean" else loss


def distributional_td_target(
    rewards: torch.Tensor, discounts: torch.Tensor, dones: torch.Tensor, next_quantiles: torch.Tensor
) -> torch.Tensor:
    """The distributional (n-step) TD target ``r + γ^k·(1 − d)·Z_j(s′)`` for every quantile ``j``.

    Follows the :class:`~rlrobust.core.types.TransitionBatch` convention: ``rewards`` already hold
    the discounted sum of the ``k`` observed rewards, ``discounts = γ^k``, and ``dones`` is 1 only
    on termination, so a terminal transition's target is its reward for every quantile.

    Args:
        rewards: ``(B,)``.
        discounts: ``(B,)`` ``γ^k``.
        dones: ``(B,)`` 1.0 on termination, else 0.0.
        next_quantiles: ``(B, M)`` quantiles of the bootstrap action at ``s′``.

    Returns:
        ``(B, M)`` target samples (no gradient is stopped here; compute under ``no_grad``).
    """
    b = next_quantiles.shape[0] if next_quantiles.dim() == 2 else -1
    for name, t in (("rewards", rewards), ("discounts", discounts), ("dones", dones)):
        if t.shape != (b,):
            raise ValueError(
                f"distributional_td_target needs {name} (B,) and next_quantiles (B, M), got {name} "
                f"{tuple(t.shape)} and next_quantiles {tuple(next_quantiles.shape)}"
            )
    bootstrap = (discounts * (1.0 - dones)).unsqueeze(1)  # (B, 1)
    return rewards.unsqueeze(1) + bootstrap * next_quantiles  # (B, M)
