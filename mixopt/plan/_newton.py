"""Batched projected Newton for the weighted split objective (many budgets or starts at once).

Solves min_u sum_k w_k L_k(N, D, D'_k) in the softmax parametrisation of
:mod:`mixopt.plan._splitcore` (budget exact, only box bounds on u) for B problems together:
each iteration evaluates every law once on a 19-point central-difference stencil in
(log N, log D, log D'_k) for all problems (gradient and Hessian of each L_k), maps them to u by
the chain rule through the softmax (Hessian of log-sum-exp: diag(s) - s s^T), takes a
Levenberg-Marquardt-shifted Newton step (Nocedal & Wright 2006, section 3.4) on the free
coordinates (bounds handled by fixing coordinates pushed against them, Bertsekas 1982), and
picks the best of a few step lengths by one batched objective evaluation.
Used when the problem has no finite caps and the objective is "weighted"; otherwise
:class:`~mixopt.plan._splitcore.SplitProblem.solve` (SLSQP) is used.
"""

from __future__ import annotations

import itertools

import numpy as np

from mixopt.plan._splitcore import SplitProblem
from mixopt.plan.flops import SixND

__all__ = ["newton_solve"]

_H = 1e-4


def _stencil() -> np.ndarray:
    pts = [np.zeros(3)]
    for i in range(3):
        for sgn in (1, -1):
            e = np.zeros(3)
            e[i] = sgn
            pts.append(e)
    for i, j in itertools.combinations(range(3), 2):
        for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            e = np.zeros(3)
            e[i], e[j] = si, sj
            pts.append(e)
    return np.array(pts) * _H


_ST = _stencil()  # (19, 3)
_PAIRS = list(itertools.combinations(range(3), 2))
_JUMP_GTOL = 1e-5
_ALPHAS = np.array([8.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.1, 0.03, 0.01, 1e-3])


def _layout(prob: SplitProblem, U: np.ndarray, log_c: np.ndarray):
    B = U.shape[0]
    x = U[:, 0] if prob.n_x else np.full(B, np.log(prob.fixed_N))
    z = np.concatenate([np.zeros((B, 1)), U[:, prob.n_x:prob.n_x + prob.S - 1]], axis=1)
    m = z.max(axis=1, keepdims=True)
    ls = z - (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))
    logT = prob.flops.log_tokens(x, log_c)
    base = np.empty((B, prob.K, 3))
    base[:, :, 0] = x[:, None]
    base[:, :, 1] = (ls[:, 0] + logT)[:, None] if prob.use_D else -np.inf
    base[:, :, 2] = -np.inf
    act = prob.active
    base[:, act, 2] = ls[:, prob.slot_of[act]] + logT[:, None]
    return x, ls, logT, base


def _values(prob: SplitProblem, base: np.ndarray) -> np.ndarray:
    """Log-losses at points ``base`` (..., K, 3) -> (..., K)."""
    out = np.empty(base.shape[:-1])
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        E = np.exp(base)
        for law, theta, ks in prob.groups:
            Ek = E[..., ks, :]
            X = {"N": Ek[..., 0, None], "D": Ek[..., 1, None], "D_spec": Ek[..., 2, None]}
            X = {v: X[v] for v in law.variables}
            out[..., ks] = np.broadcast_to(law.log_predict_raw(theta, X),
                                           Ek[..., 0, None].shape)[..., 0]
    return out


def _objective(prob: SplitProblem, U: np.ndarray, log_c: np.ndarray) -> np.ndarray:
    _, _, _, base = _layout(prob, U, log_c)
    F = prob.weights @ np.exp(_values(prob, base)).T
    return np.where(np.isfinite(F), F, np.inf)


def law_derivatives(prob: SplitProblem, base: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log L_k, its gradient and Hessian in (log N, log D, log D'_k) at ``base`` (B, K, 3).

    Laws with closed-form derivatives (``log_loss_derivatives``: the built-in L(N, D, D')
    forms) use them; any other law is differentiated on the 19-point central-difference
    stencil (step ``_H``), all domains of a family in one call.
    """
    B, K = base.shape[:2]
    l0 = np.empty((B, K))
    g = np.empty((B, K, 3))
    Hl = np.empty((B, K, 3, 3))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for law, theta, ks in prob.groups:
            Yk = base[:, ks, None, :]  # (B, k, 1, 3)
            if hasattr(law, "log_loss_derivatives"):
                lk, gk, hk = law.log_loss_derivatives(theta, Yk[..., 0], Yk[..., 1], Yk[..., 2])
                l0[:, ks], g[:, ks], Hl[:, ks] = lk[..., 0], gk[..., 0, :], hk[..., 0, :, :]
                continue
            E = np.exp(Yk + _ST)  # (B, k, 19, 3)
            X = {"N": E[..., 0], "D": E[..., 1], "D_spec": E[..., 2]}
            lv = law.log_predict_raw(theta, {v: X[v] for v in law.variables})
            l0[:, ks] = lv[..., 0]
            g[:, ks] = (lv[..., 1:7:2] - lv[..., 2:7:2]) / (2 * _H)
            Hk = np.empty(lv.shape[:-1] + (3, 3))
            for i in range(3):
                Hk[..., i, i] = (lv[..., 1 + 2 * i] - 2 * lv[..., 0] + lv[..., 2 + 2 * i]) / _H**2
            for p, (i, j) in enumerate(_PAIRS):
                q = 7 + 4 * p
                v = (lv[..., q] - lv[..., q + 1] - lv[..., q + 2] + lv[..., q + 3]) / (4 * _H**2)
                Hk[..., i, j] = Hk[..., j, i] = v
            Hl[:, ks] = Hk
    return l0, g, Hl


def _derivs(prob: SplitProblem, U: np.ndarray, log_c: np.ndarray):
    B, n, K, S = U.shape[0], prob.n, prob.K, prob.S
    x, ls, logT, base = _layout(prob, U, log_c)
    s = np.exp(ls)
    l0, g, Hl = law_derivatives(prob, base)
    dead = ~np.isfinite(base)  # coordinates at zero tokens do not move
    g[dead] = 0.0
    Hl[dead[..., :, None] | dead[..., None, :]] = 0.0
    L = np.exp(l0)
    gL = L[..., None] * g
    HL = L[..., None, None] * (Hl + g[..., :, None] * g[..., None, :])
    if isinstance(prob.flops, SixND):
        dT, d2T = np.full(B, -1.0), np.zeros(B)
    else:
        tp = prob.flops.log_tokens(x + 1e-4, log_c)
        tm = prob.flops.log_tokens(x - 1e-4, log_c)
        dT, d2T = (tp - tm) / 2e-4, (tp - 2 * logT + tm) / 1e-8
    J = np.zeros((B, K, 3, n))
    nz = slice(prob.n_x, prob.n_x + S - 1)
    if prob.n_x:
        J[:, :, 0, 0] = 1.0
        J[:, :, 1, 0] = dT[:, None] if prob.use_D else 0.0
        J[:, prob.active, 2, 0] = dT[:, None]
    eye = np.eye(S)
    if prob.use_D:
        J[:, :, 1, nz] = (eye[0] - s)[:, None, 1:]
    act = prob.active
    if act.size:
        J[:, act, 2, nz] = (eye[prob.slot_of[act]][None] - s[:, None, :])[..., 1:]
    w = prob.weights
    F = (w * L).sum(axis=1)
    grad = (J * (w[None, :, None] * gL)[..., None]).sum(axis=(1, 2))
    WHJ = (w[None, :, None, None] * HL) @ J  # (B, K, 3, n)
    Jf = J.reshape(B, 3 * K, n)
    hess = np.swapaxes(Jf, 1, 2) @ WHJ.reshape(B, 3 * K, n)
    tok = (w[None, :, None] * gL[:, :, 1:]).sum(axis=(1, 2))  # sum of token-coordinate grads
    M = np.zeros((B, n, n))
    if prob.n_x:
        M[:, 0, 0] = d2T
    lse_h = s[:, :, None] * eye - s[:, :, None] * s[:, None, :]
    M[:, nz, nz] = -lse_h[:, 1:, 1:]
    hess += tok[:, None, None] * M
    return F, grad, hess


def _jump(prob: SplitProblem, U: np.ndarray, g: np.ndarray, lo: np.ndarray,
          down: float = 1e-3, up: float = 1e-9) -> np.ndarray:
    """An active-set jump of the token shares, proposed as one more line-search candidate.

    In the softmax parametrisation a share that should be zero only decays geometrically under
    Newton steps (its gradient vanishes with it), and one at the bound cannot come back (same
    reason). So every slot whose share is below ``down`` times the uniform share ``1 / S`` and
    whose gradient pushes it down
    moves to its lower bound, and every slot at its lower bound whose gradient pulls it up
    moves to the share ``up`` (small, so that a first-order gain shows). The candidate is kept
    only when it lowers the objective.
    """
    nz = slice(prob.n_x, prob.n_x + prob.S - 1)
    z = np.concatenate([np.zeros((U.shape[0], 1)), U[:, nz]], axis=1)
    m = z.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    ls = z - lse
    out = U.copy()
    sub = out[:, nz]
    gz, lz = g[:, nz], lo[:, nz]
    go_down = (ls[:, 1:] < np.log(down / prob.S)) & (gz > 0)  # down x the uniform share
    go_up = (sub <= lz + 1e-12) & (gz < 0)
    sub[go_down] = lz[go_down]
    sub[go_up] = np.broadcast_to(lse + np.log(up), sub.shape)[go_up]
    out[:, nz] = sub
    return out


def newton_solve(prob: SplitProblem, U0: np.ndarray, log_c: np.ndarray, lo: np.ndarray,
                 hi: np.ndarray, *, max_iter: int = 100, gtol: float = 1e-13):
    """Minimise from each row of ``U0`` (B, n); bounds ``lo``/``hi`` (B, n).

    Returns ``(U, F, converged)``.
    """
    U = np.clip(np.array(U0, dtype=float), lo, hi)
    B, n = U.shape
    done = np.zeros(B, dtype=bool)
    small_g = np.zeros(B, dtype=bool)  # gradient test of the final report, at the last point
    _, prob_of = np.unique(log_c, return_inverse=True)
    n_prob = int(prob_of.max()) + 1
    F = _objective(prob, U, log_c)
    for _ in range(max_iter):
        idx = np.flatnonzero(~done)
        if len(idx) == 0:
            break
        Fi, g, H = _derivs(prob, U[idx], log_c[idx])
        Ui, loi, hii = U[idx], lo[idx], hi[idx]
        pinned = ((Ui <= loi + 1e-12) & (g > 0)) | ((Ui >= hii - 1e-12) & (g < 0))
        g = np.where(pinned, 0.0, g)
        gnorm = np.abs(g).max(axis=1)
        conv = gnorm <= gtol * np.maximum(1.0, np.abs(Fi))
        small_g[idx] = gnorm <= 1e-6 * np.maximum(1.0, np.abs(Fi))
        Hm = np.where(pinned[:, :, None] | pinned[:, None, :], 0.0, H)
        Hm[:, np.arange(n), np.arange(n)] += pinned
        Hm = 0.5 * (Hm + np.swapaxes(Hm, 1, 2))
        ev = np.linalg.eigvalsh(Hm)
        scale = np.maximum(np.abs(ev).max(axis=1), 1e-12)
        shift = np.where(ev[:, 0] < 1e-10 * scale, -ev[:, 0] + 1e-8 * scale, 0.0)
        Hm[:, np.arange(n), np.arange(n)] += shift[:, None]
        step = -np.linalg.solve(Hm, g[..., None])[..., 0]
        big = np.abs(step).max(axis=1)
        step *= np.minimum(1.0, 5.0 / np.maximum(big, 1e-300))[:, None]
        trial = np.clip(Ui[:, None, :] + _ALPHAS[None, :, None] * step[:, None, :],
                        loi[:, None, :], hii[:, None, :])  # (b, A, n)
        if prob.S > 1:  # candidate: vanishing shares to their bound, and back (see _jump),
            # only once a start has nearly converged (its basin is chosen by then)
            near = gnorm <= _JUMP_GTOL * np.maximum(1.0, np.abs(Fi))
            jump = Ui.copy()
            if near.any():
                jump[near] = _jump(prob, Ui[near], g[near], loi[near])
            trial = np.concatenate([trial, jump[:, None, :]], axis=1)
        A = trial.shape[1]
        Ft = _objective(prob, trial.reshape(-1, n), np.repeat(log_c[idx], A)).reshape(-1, A)
        best = np.argmin(Ft, axis=1)
        Fb = Ft[np.arange(len(idx)), best]
        improve = Fb < Fi
        U[idx[improve]] = trial[np.flatnonzero(improve), best[improve]]
        F[idx] = np.where(improve, Fb, Fi)
        gain = Fi - Fb
        scale_f = np.maximum(1.0, np.abs(Fi))
        nearly = gnorm <= 1e-7 * scale_f
        # stalled: no decrease, or (near a stationary point) a crawl of < 1e-13 per step
        stalled = ~improve | (gain <= 1e-15 * np.abs(Fi)) | (nearly & (gain <= 1e-13 * scale_f))
        jumped = improve & (best == len(_ALPHAS))  # the active set changed: not done yet
        # a start nearly converged above another start's objective is in a worse basin
        # (rows with the same budget are starts of the same problem)
        fmin = np.full(n_prob, np.inf)
        np.minimum.at(fmin, prob_of, F)
        fm = fmin[prob_of[idx]]
        worse = (gnorm <= 1e-5 * scale_f) & (F[idx] > fm + 1e-8 * np.abs(fm))
        done[idx[(conv & ~jumped) | stalled | worse]] = True
    # a start that ended moved by a converged Newton step or a tiny stalled one keeps its last
    # gradient test; those stopped by max_iter are tested where they are
    rest = np.flatnonzero(~done)
    if rest.size:
        Fi, g, _ = _derivs(prob, U[rest], log_c[rest])
        Ur = U[rest]
        pinned = ((Ur <= lo[rest] + 1e-12) & (g > 0)) | ((Ur >= hi[rest] - 1e-12) & (g < 0))
        g = np.where(pinned, 0.0, g)
        small_g[rest] = np.abs(g).max(axis=1) <= 1e-6 * np.maximum(1.0, np.abs(Fi))
    return U, F, small_g
