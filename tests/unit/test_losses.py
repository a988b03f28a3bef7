"""B1–B4: quantile Huber loss, Huber, expectile loss and the distributional TD target against
independent NumPy references and hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlrobust.core.losses import (
    distributional_td_target,
    expectile_loss,
    huber,
    quantile_huber_loss,
    quantile_huber_loss_and_grad,
)


def np_quantile_huber(pred: np.ndarray, target: np.ndarray, taus: np.ndarray, kappa: float) -> float:
    """Dabney et al. 2018 eq. 10 with explicit loops: mean_b Σ_i mean_j |τ_i − 1{u<0}| L_κ(u)/κ."""
    total = 0.0
    for b in range(pred.shape[0]):
        for i in range(pred.shape[1]):
            row = 0.0
            for j in range(target.shape[1]):
                u = target[b, j] - pred[b, i]
                l_kappa = 0.5 * u * u if abs(u) <= kappa else kappa * (abs(u) - 0.5 * kappa)
                row += abs(taus[b, i] - (1.0 if u < 0 else 0.0)) * l_kappa / kappa
            total += row / target.shape[1]
    return total / pred.shape[0]


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 4, 5), (8, 7, 2), (5, 16, 16)])
@pytest.mark.parametrize("kappa", [1.0, 0.25, 3.0])
def test_b1_matches_numpy_reference(shape, kappa):
    rng = np.random.default_rng(sum(shape))
    b, n, m = shape
    pred = rng.normal(scale=2.0, size=(b, n))
    target = rng.normal(scale=2.0, size=(b, m))
    taus = rng.random((b, n))
    got = quantile_huber_loss(torch.tensor(pred), torch.tensor(target), torch.tensor(taus), kappa)
    assert abs(got.item() - np_quantile_huber(pred, target, taus, kappa)) < 1e-6
    # float32 inputs agree too (looser, float32 rounding)
    got32 = quantile_huber_loss(*(torch.tensor(x, dtype=torch.float32) for x in (pred, target, taus)), kappa)
    assert got32.item() == pytest.approx(np_quantile_huber(pred, target, taus, kappa), rel=1e-5)


def test_b1_fixed_fractions_broadcast():
    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=(4, 3)), rng.normal(size=(4, 6))
    mid = (np.arange(3) + 0.5) / 3
    got = quantile_huber_loss(torch.tensor(pred), torch.tensor(target), torch.tensor(mid))
    assert abs(got.item() - np_quantile_huber(pred, target, np.tile(mid, (4, 1)), 1.0)) < 1e-6


def test_b1_nonnegative_and_zero_iff_equal():
    rng = np.random.default_rng(2)
    for _ in range(20):
        pred = torch.tensor(rng.normal(size=(4, 5)))
        target = torch.tensor(rng.normal(size=(4, 3)))
        assert quantile_huber_loss(pred, target, torch.rand(4, 5, dtype=torch.float64)).item() > 0
    value = torch.tensor(rng.normal(size=(4, 1)))
    pred, target = value.expand(4, 5).clone(), value.expand(4, 3).clone()
    taus = torch.rand(4, 5, dtype=torch.float64)
    assert quantile_huber_loss(pred, target, taus).item() == 0.0
    pred[2, 3] += 1e-3
    assert quantile_huber_loss(pred, target, taus).item() > 0


def test_known_answer_b1_n2_m3():
    # pred [0, 1] at τ = [.25, .75]; targets [-1, .5, 3]; κ = 1.
    # i=1: u = [-1, .5, 3] -> L = [.5, .125, 2.5], w = [.75, .25, .25] -> (.375 + .03125 + .625)/3
    # i=2: u = [-2, -.5, 2] -> L = [1.5, .125, 1.5], w = [.25, .25, .75] -> (.375 + .03125 + 1.125)/3
    # total = 16.5/48 + 24.5/48 = 41/48
    pred = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    target = torch.tensor([[-1.0, 0.5, 3.0]], dtype=torch.float64)
    taus = torch.tensor([[0.25, 0.75]], dtype=torch.float64)
    assert quantile_huber_loss(pred, target, taus).item() == pytest.approx(41 / 48, abs=1e-12)
    # Mean over targets: repeating every target leaves the loss unchanged ...
    assert quantile_huber_loss(pred, target.repeat(1, 2), taus).item() == pytest.approx(41 / 48, abs=1e-12)
    # ... sum over predictions: repeating every prediction doubles it.
    assert quantile_huber_loss(pred.repeat(1, 2), target, taus.repeat(1, 2)).item() == pytest.approx(
        2 * 41 / 48, abs=1e-12
    )


@pytest.mark.parametrize(
    "target, expected_grad",
    [
        (0.5, -0.3 * 0.5),  # above, quadratic region: pushed up with weight τ
        (-0.5, 0.7 * 0.5),  # below: pushed down with weight 1 − τ
        (3.0, -0.3 * 1.0),  # above, linear region: |gradient| = τ·κ/κ
        (-3.0, 0.7 * 1.0),
    ],
)
def test_gradient_sign_and_weights(target, expected_grad):
    pred = torch.zeros(1, 1, dtype=torch.float64, requires_grad=True)
    loss = quantile_huber_loss(
        pred, torch.tensor([[target]], dtype=torch.float64), torch.tensor([[0.3]], dtype=torch.float64)
    )
    (grad,) = torch.autograd.grad(loss, pred)
    assert grad.item() == pytest.approx(expected_grad, abs=1e-12)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    pred = torch.tensor(rng.normal(scale=2, size=(3, 4)), requires_grad=True)
    target, taus = torch.tensor(rng.normal(scale=2, size=(3, 5))), torch.tensor(rng.random((3, 4)))
    (grad,) = torch.autograd.grad(quantile_huber_loss(pred, target, taus, 0.7), pred)
    p0, eps = pred.detach().numpy(), 1e-6
    for b, i in [(0, 0), (1, 2), (2, 3)]:
        hi, lo = p0.copy(), p0.copy()
        hi[b, i] += eps
        lo[b, i] -= eps
        fd = (
            np_quantile_huber(hi, target.numpy(), taus.numpy(), 0.7)
            - np_quantile_huber(lo, target.numpy(), taus.numpy(), 0.7)
        ) / (2 * eps)
        assert grad[b, i].item() == pytest.approx(fd, abs=1e-6)
    # the target is a constant
    target.requires_grad_(True)
    loss = quantile_huber_loss(pred, target, taus)
    assert torch.autograd.grad(loss, target, allow_unused=True)[0] is None


def np_quantile_huber_grad(
    pred: np.ndarray, target: np.ndarray, taus: np.ndarray, kappa: float
) -> np.ndarray:
    """∂/∂pred_bi of the loss above, by hand: −(1/(B·M)) Σ_j |τ_i − 1{u<0}|·clamp(u, −κ, κ)/κ."""
    grad = np.zeros_like(pred)
    for b in range(pred.shape[0]):
        for i in range(pred.shape[1]):
            for j in range(target.shape[1]):
                u = target[b, j] - pred[b, i]
                weight = abs(taus[b, i] - (1.0 if u < 0 else 0.0))
                grad[b, i] -= weight * min(max(u, -kappa), kappa) / kappa
    return grad / (pred.shape[0] * target.shape[1])


@pytest.mark.parametrize("shape, kappa", [((1, 1, 1), 1.0), ((3, 4, 5), 0.25), ((6, 8, 3), 3.0)])
@pytest.mark.parametrize("fixed_taus", [False, True])
def test_loss_and_grad_match_numpy_references(shape, kappa, fixed_taus):
    rng = np.random.default_rng(10 + sum(shape))
    b, n, m = shape
    pred, target = rng.normal(scale=2.0, size=(b, n)), rng.normal(scale=2.0, size=(b, m))
    taus = (np.arange(n) + 0.5) / n if fixed_taus else rng.random((b, n))
    full_taus = np.tile(taus, (b, 1)) if fixed_taus else taus
    pred_t = torch.tensor(pred, requires_grad=True)
    loss, grad = quantile_huber_loss_and_grad(pred_t, torch.tensor(target), torch.tensor(taus), kappa)
    assert not loss.requires_grad and not grad.requires_grad and grad.shape == (b, n)
    assert abs(loss.item() - np_quantile_huber(pred, target, full_taus, kappa)) < 1e-6
    np.testing.assert_allclose(
        grad.numpy(), np_quantile_huber_grad(pred, target, full_taus, kappa), atol=1e-9
    )
    # the autograd path of quantile_huber_loss gives the same gradient
    (auto,) = torch.autograd.grad(
        quantile_huber_loss(pred_t, torch.tensor(target), torch.tensor(taus), kappa), pred_t
    )
    np.testing.assert_allclose(auto.numpy(), grad.numpy(), atol=1e-12)


def test_loss_and_grad_shape_errors():
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(5, 3\)"):
        quantile_huber_loss_and_grad(torch.zeros(4, 3), torch.zeros(5, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"taus \(4, 2\).*pred \(4, 3\)"):
        quantile_huber_loss_and_grad(torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="kappa"):
        quantile_huber_loss_and_grad(torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4, 3), kappa=-1.0)


def test_minimiser_is_the_quantile():
    # Card test 1: with a tiny κ the best constant prediction for fraction τ is the τ-quantile.
    rng = np.random.default_rng(4)
    samples = rng.exponential(size=999)
    grid = np.linspace(0, 4, 801)
    for tau in (0.1, 0.5, 0.9):
        losses = [
            quantile_huber_loss(
                torch.tensor([[g]]), torch.tensor(samples)[None], torch.tensor([[tau]]), 1e-3
            ).item()
            for g in grid
        ]
        best = grid[int(np.argmin(losses))]
        assert abs(best - np.quantile(samples, tau, method="inverted_cdf")) <= 0.006


def test_b2_shape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(5, 3\)"):
        quantile_huber_loss(torch.zeros(4, 3), torch.zeros(5, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"\(4, 3, 1\).*\(4, 3\)"):
        quantile_huber_loss(torch.zeros(4, 3, 1), torch.zeros(4, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"\(4,\).*\(4, 3\)"):
        quantile_huber_loss(torch.zeros(4), torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match=r"taus \(4, 2\).*pred \(4, 3\)"):
        quantile_huber_loss(torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="kappa"):
        quantile_huber_loss(torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4, 3), kappa=0.0)


def test_huber_values():
    u = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    expected = [2.5, 0.5, 0.125, 0.0, 0.125, 0.5, 2.5]
    assert huber(u).tolist() == pytest.approx(expected)
    # κ = 2: ½u² inside, κ(|u| − ½κ) outside
    assert huber(u, 2.0).tolist() == pytest.approx([4.0, 0.5, 0.125, 0.0, 0.125, 0.5, 4.0])


def test_b3_expectile_loss():
    rng = np.random.default_rng(5)
    diff = torch.tensor(rng.normal(size=(6, 7)))
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * np.mean(diff.numpy() ** 2), abs=1e-12)
    d = torch.tensor([-2.0, 1.0, 3.0])
    # weights (1 − τ) = .3 for negative diffs, τ = .7 otherwise: [.3·4, .7·1, .7·9]
    assert expectile_loss(d, 0.7, reduction="none").tolist() == pytest.approx([1.2, 0.7, 6.3])
    assert expectile_loss(d, 0.7).item() == pytest.approx(8.2 / 3)
    with pytest.raises(ValueError, match="expectile"):
        expectile_loss(d, 1.0)
    with pytest.raises(ValueError, match="reduction"):
        expectile_loss(d, 0.7, reduction="sum")


def test_b4_td_target_terminal_gamma_and_n_step():
    gamma = 0.9
    next_q = torch.tensor([[1.0, 2.0, 5.0], [1.0, 2.0, 5.0], [-1.0, 0.0, 1.0]])
    # row 0: terminal — the target is the reward for every quantile
    # row 1: 1-step, r = 0.5, γ = 0.9
    # row 2: 3-step, rewards (1, 2, 3) summed by the buffer: 1 + .9·2 + .81·3 = 5.23; discount .729
    rewards = torch.tensor([0.5, 0.5, 1 + gamma * 2 + gamma**2 * 3])
    discounts = torch.tensor([gamma, gamma, gamma**3])
    dones = torch.tensor([1.0, 0.0, 0.0])
    got = distributional_td_target(rewards, discounts, dones, next_q)
    expected = [[0.5, 0.5, 0.5], [1.4, 2.3, 5.0], [5.23 - 0.729, 5.23, 5.23 + 0.729]]
    assert got.tolist()[0] == pytest.approx(expected[0])
    assert got.tolist()[1] == pytest.approx(expected[1])
    assert got.tolist()[2] == pytest.approx(expected[2])
    with pytest.raises(ValueError, match=r"dones \(2,\).*\(3, 3\)"):
        distributional_td_target(rewards, discounts, dones[:2], next_q)


def test_expectile_gradient_and_mixed_dtypes():
    pred = torch.tensor([0.0, 0.0, 0.0], requires_grad=True)
    target = torch.tensor([-2.0, 1.0, 0.0])
    (grad,) = torch.autograd.grad(expectile_loss(target - pred, 0.7), pred)
    # d/dp mean w·(t − p)² = −2·w·(t − p)/3: w = .3 below, .7 above, anything at 0
    assert grad.tolist() == pytest.approx([-2 * 0.3 * -2 / 3, -2 * 0.7 * 1 / 3, 0.0])
    # float64 fractions with float32 quantiles (as an agent's sampled taus may be)
    loss = quantile_huber_loss(
        torch.zeros(2, 3), torch.ones(2, 4), torch.full((2, 3), 0.25, dtype=torch.float64)
    )
    assert loss.dtype == torch.float32 and loss.item() == pytest.approx(3 * 0.25 * 0.5)
