"""Tabular IWOCS on a finite kernel set, and the paper's "windy walk" check.

Zouitine, Geist, Rachelson, *Solving robust MDPs as a sequence of static RL problems*
(arXiv 2410.06212), Algorithm 1, with exact solvers in place of deep RL:

for i = 0, 1, ...:

1. solve the non-robust MDP ``T_i``: ``Q*_{T_i}`` by value iteration;
2. ``Q_i(s, a) = min_{j ≤ i} Q*_{T_j}(s, a)`` and the candidate ``π_i(s) = argmax_a Q_i(s, a)``;
3. the worst kernel for the candidate, by brute force over the finite set:
   ``T_{i+1} = argmin_{T ∈ 𝒯} V^{π_i}_T(s0)`` (exact policy evaluation);
4. stop when ``|V^{π_i}_{T_{i+1}}(s0) − Q_i(s0, π_i(s0))| ≤ ε`` or ``T_{i+1}`` is already in
   ``𝒯_i`` (the sequence could not change any more).

Properties the tests check: ``Q_i ≥ Q*`` of the sa-rectangular hull of ``𝒯`` and ``Q_{i+1} ≤ Q_i``.

:func:`finite_set_robust_value_iteration` is robust value iteration over the sa-rectangular hull of
a finite set (``min_k`` per state-action pair), the exact answer when the set equals its hull.

Deviations from the paper: the worst case is found by exact policy evaluation over every kernel
instead of 300 Monte-Carlo rollouts; the explicit "already in the set" stop is added because the
value criterion alone can miss it when ``π_i`` ties.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rlrobust.core.errors import ConfigError

# ------------------------------------------------------------------------------- solvers


def _check(kernels: np.ndarray, R: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    kernels = np.asarray(kernels, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    if kernels.ndim == 3:
        kernels = kernels[None]
    if kernels.ndim != 4 or kernels.shape[1] != kernels.shape[3] or R.shape != kernels.shape[1:3]:
        raise ValueError(
            f"need kernels (K, S, A, S) or (S, A, S) and R (S, A), got {kernels.shape} and {R.shape}"
        )
    if not np.allclose(kernels.sum(-1), 1.0, atol=1e-8) or (kernels < 0).any():
        raise ValueError("every kernel row P(·|s, a) must be a probability distribution")
    if not 0.0 <= gamma < 1.0:
        raise ConfigError(f"gamma must lie in [0, 1), got {gamma}")
    return kernels, R


def value_iteration(
    P: np.ndarray, R: np.ndarray, gamma: float, *, tol: float = 1e-8, max_iter: int = 100_000
) -> np.ndarray:
    """Optimal ``Q*`` ``(S, A)`` of one MDP ``P (S, A, S)``, ``R (S, A)``, to sup-norm ``tol``."""
    return finite_set_robust_value_iteration(P, R, gamma, tol=tol, max_iter=max_iter)[1]


def finite_set_robust_value_iteration(
    kernels: np.ndarray, R: np.ndarray, gamma: float, *, tol: float = 1e-8, max_iter: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """Robust VI over the sa-rectangular hull of ``K`` kernels: ``Q(s,a) = R + γ min_k P_k(·|s,a)·V``.

    Args:
        kernels: ``(K, S, A, S)`` (or one ``(S, A, S)`` kernel: plain value iteration).
        R: ``(S, A)`` rewards. gamma: discount in [0, 1). tol: sup-norm accuracy of ``V``.

    Returns:
        ``(V (S,), Q (S, A))``.
    """
    kernels, R = _check(kernels, R, gamma)
    v = np.zeros(kernels.shape[1])
    for _ in range(max_iter):
        q = R + gamma * (kernels @ v).min(axis=0)  # (S, A)
        v_new = q.max(axis=1)
        done = np.abs(v_new - v).max() * gamma <= tol * (1.0 - gamma)  # γ-contraction bound
        v = v_new
        if done:
            break
    q = R + gamma * (kernels @ v).min(axis=0)
    return v, q


def policy_evaluation(P: np.ndarray, R: np.ndarray, policy: np.ndarray, gamma: float) -> np.ndarray:
    """Exact ``V^π`` ``(S,)`` of a deterministic policy ``(S,)``: ``(I − γ P_π)⁻¹ R_π``."""
    kernels, R = _check(P, R, gamma)
    s = np.arange(kernels.shape[1])
    policy = np.asarray(policy, dtype=np.int64)
    P_pi, R_pi = kernels[0][s, policy], R[s, policy]
    return np.linalg.solve(np.eye(len(s)) - gamma * P_pi, R_pi)


# ------------------------------------------------------------------------------- IWOCS


@dataclass
class TabularIWOCSResult:
    """What :func:`tabular_iwocs` found.

    Attributes:
        kernels: indices into the set of ``T_0, T_1, ...`` in the order they were added.
        values: ``Q_i(s0, π_i(s0))`` for each iteration i (never increases).
        worst_values: ``V^{π_i}_{T_{i+1}}(s0)``, the candidate's worst value over the whole set.
        worst_kernels: the index ``T_{i+1}`` found at each iteration.
        q: the final ``Q_i`` ``(S, A)``; policy: the final ``π_i`` ``(S,)``.
        stopped: True if the stopping rule fired (False: ``max_iterations`` ran out).
    """

    kernels: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    worst_values: list[float] = field(default_factory=list)
    worst_kernels: list[int] = field(default_factory=list)
    q: np.ndarray | None = None
    policy: np.ndarray | None = None
    stopped: bool = False


def tabular_iwocs(
    kernels: np.ndarray,
    R: np.ndarray,
    gamma: float,
    s0: int,
    *,
    initial: int = 0,
    epsilon: float = 1e-6,
    max_iterations: int | None = None,
    tol: float = 1e-8,
) -> TabularIWOCSResult:
    """IWOCS (Algorithm 1) on a finite kernel set; see the module docstring.

    Args:
        kernels: ``(K, S, A, S)`` the uncertainty set. R: ``(S, A)``. gamma: discount.
        s0: the start state whose worst-case value is optimised.
        initial: index of ``T_0``. epsilon: ε of the stopping rule.
        max_iterations: cap on iterations (default ``K``: each iteration adds a new kernel).
        tol: value-iteration accuracy (the paper uses 1e-3).
    """
    kernels, R = _check(kernels, R, gamma)
    if not 0 <= initial < len(kernels):
        raise ConfigError(f"initial kernel index {initial} outside the set of {len(kernels)} kernels")
    result = TabularIWOCSResult(kernels=[initial])
    qs = [value_iteration(kernels[initial], R, gamma, tol=tol)]
    for _ in range(max_iterations or len(kernels)):
        q = np.min(qs, axis=0)
        policy = q.argmax(axis=1)
        value = float(q[s0, policy[s0]])
        worst = np.array([policy_evaluation(k, R, policy, gamma)[s0] for k in kernels])  # brute force
        nxt = int(worst.argmin())
        result.values.append(value)
        result.worst_values.append(float(worst[nxt]))
        result.worst_kernels.append(nxt)
        result.q, result.policy = q, policy
        if abs(worst[nxt] - value) <= epsilon or nxt in result.kernels:
            result.stopped = True
            break
        result.kernels.append(nxt)
        qs.append(value_iteration(kernels[nxt], R, gamma, tol=tol))
    return result


# ------------------------------------------------------------------------------- windy walk

WINDY_ROWS = WINDY_COLS = 6
#: two wall columns (rows 1-3 of columns 1 and 3) split the middle rows into three corridors.
WINDY_WALLS = frozenset({(1, 1), (2, 1), (3, 1), (1, 3), (2, 3), (3, 3)})
WINDY_START, WINDY_GOAL = (5, 0), (0, 0)
#: corridor columns -> exponent k of the push probability α^k (short corridor = windiest).
WINDY_CORRIDORS = {0: 1, 2: 3, 4: 6, 5: 6}
_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))  # up, right, down, left


def windy_walk(alpha: float) -> tuple[np.ndarray, np.ndarray, int]:
    """The paper's windy-walk gridworld for one wind level ``alpha``.

    6 x 6 cells (6 walls), 4 actions (up, right, down, left), reward −1 per step until the goal
    (absorbing, reward 0). Start bottom-left, goal top-left; three corridors through rows 1-3
    (column 0: 5 steps; column 2: 9; columns 4-5: 13) push the agent one cell back down with
    probability α, α³ and α⁶ instead of its move. Moves into walls or off the grid stay put.

    Returns:
        ``(P (36, 4, 36), R (36, 4), start state)``; state index ``row * 6 + col``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must lie in [0, 1], got {alpha}")
    n = WINDY_ROWS * WINDY_COLS

    def index(r: int, c: int) -> int:
        return r * WINDY_COLS + c

    def move(r: int, c: int, dr: int, dc: int) -> int:
        nr, nc = r + dr, c + dc
        if not (0 <= nr < WINDY_ROWS and 0 <= nc < WINDY_COLS) or (nr, nc) in WINDY_WALLS:
            return index(r, c)
        return index(nr, nc)

    P = np.zeros((n, 4, n))
    R = np.full((n, 4), -1.0)
    for r in range(WINDY_ROWS):
        for c in range(WINDY_COLS):
            s = index(r, c)
            if (r, c) == WINDY_GOAL:
                P[s, :, s], R[s] = 1.0, 0.0
                continue
            push = alpha ** WINDY_CORRIDORS[c] if 1 <= r <= 3 and c in WINDY_CORRIDORS else 0.0
            for a, (dr, dc) in enumerate(_MOVES):
                P[s, a, move(r, c, dr, dc)] += 1.0 - push
                P[s, a, move(r, c, 1, 0)] += push
    return P, R, index(*WINDY_START)


def windy_walk_set(
    n_alpha: int = 25, max_alpha: float = 0.5
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """The paper's finite set: ``n_alpha`` wind levels evenly spaced in ``[0, max_alpha]``.

    Returns:
        ``(kernels (K, 36, 4, 36), R (36, 4), start state, alphas (K,))``.
    """
    alphas = np.linspace(0.0, max_alpha, n_alpha)
    built = [windy_walk(float(a)) for a in alphas]
    return np.stack([p for p, _, _ in built]), built[0][1], built[0][2], alphas
