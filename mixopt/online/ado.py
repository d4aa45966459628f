"""ADO: Adaptive Data Optimization with per-domain scaling laws (Jiang et al. 2025).

Call ``update(losses, counts=...)`` once per training step (the code's iteration ``itr``; the
``t``-th call is ``itr = t - 1``) with each domain's mean training loss in the batch and the
number of its samples. Each domain k gets a power law in the data seen ``n``,

    L_k(n) = eps_k + beta_k n^(-alpha_k),

refitted every ``refit_every`` steps from ``start_step`` on, to the Savitzky-Golay-smoothed
(window 101, order 3) loss curve, using the steps from ``ignore_steps`` on, every
``fit_stride``-th. With ``n`` the data seen so far, the preference and the mixture are

    rho_k  proportional to  mu_k * max(alpha_k, 0.05) (L_k(n) - eps_k) / n * sqrt(h_k)
    rho    <- clip(rho, floor): max(rho_k, floor), renormalised
    pi     =  gamma * pbar + (1 - gamma) * rho,    pbar <- (1 - 1/(itr+1)) pbar + rho/(itr+1)

(Sec. 3: the slope ``-dL_k/dn`` of the law, a prior ``mu``, the credit term ``h``: an EMA with
decay 0.9 of the realised sample distribution; ``pbar`` starts at ``mu`` and the mixture uses
its value *before* this step). Before the first fit the mixture is ``mu``.

These defaults follow the public code (yidingjiang/ado, ``src/data_selectors/ado.py``,
``AdoSelector.update`` / ``curr_dist``, with the Pile configs' ``ignore_steps=1000``,
``start_step=500``, ``update_interval=1000``):

* ``x_axis="total"``: ``n`` is the total number of samples seen, the same for every domain (the
  code's ``use_same_step_size=True``); ``"domain"`` uses each domain's own count;
* the credit term uses the realised counts when ``counts`` are passed (``credit="counts"``);
  ``credit="mixture"`` uses the rule's own mixture;
* ``alpha_min=0.05`` bounds the exponent in the slope only;
* ``average="previous"``: ``pbar`` as above; ``average="inclusive"`` uses the mean of ``rho``
  over all steps including this one (``rho = mu`` before the fit), mixopt's earlier rule;
* ``floor_mode="clip"``: the code's ``clip_min_probability``; ``"exact"`` keeps every weight at
  least ``floor`` exactly (:func:`mixopt.online.floor_weights`);
* a domain missing from a batch (NaN loss) repeats its previous loss, or the batch's mean loss
  at the first step (``nan_policy="impute"``);
* ``fitter="reference"``: the code's penalised objective (see :mod:`mixopt.online.ado_fit`),
  whose penalties keep ``eps >= e^0.5 = 1.65``: the irreducible loss of a domain below that is
  overestimated (exact data with ``eps = 1`` gives 1.65). ``fitter="mixopt"`` (:func:`mixopt.fit`,
  Huber 1e-3 on log residuals without the penalties) and ``"grid"`` (vectorised profile least
  squares) recover ``eps = 1``; a callable ``fitter(n, y) -> (eps, beta, alpha)`` is also
  accepted. Per domain and refit on 100 points (2-core machine): reference about 0.05 s,
  mixopt about 0.03 s, grid about 0.2 ms (``benchmarks/online_overhead.py``); the time grows
  with the points, so ``fit_stride``, ``max_points`` and ``refit_every`` bound it;
* ``prior``: the code's default mode uses token-count shares (``mode="empirical"``); pass the
  token counts as ``prior``. The default ``None`` is uniform (the code's ``mode="uniform"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mixopt.errors import MixoptError, MixtureError
from mixopt.online.ado_fit import fit_laws, fit_mixopt, fit_reference, savgol
from mixopt.online.base import (
    OnlineRule,
    check_fraction,
    check_int,
    decode,
    encode,
    parse_domains,
    state_int,
)
from mixopt.online.wrappers import floor_weights

__all__ = ["ADO", "fit_laws", "clip_min_probability"]


def clip_min_probability(p: np.ndarray, floor: float) -> np.ndarray:
    """The code's floor: scale so a total ``floor * k`` fits, ``max(p, floor)``, renormalise."""
    deficit = max(floor * p.shape[0] - p.sum(), 0.0)
    q = np.maximum(p * ((1.0 - deficit) / p.sum()), floor)
    return q / q.sum()


class ADO(OnlineRule):
    """Adaptive Data Optimization (Jiang et al. 2025, Sec. 3), as the public code runs it.

    Parameters
    ----------
    k:
        Number of domains, or their labels.
    prior:
        ``mu`` (length k, positive; normalised): token counts for the code's default; uniform
        by default. Also the mixture before the first fit.
    tokens_per_update:
        Data drawn per step when ``update`` gets no ``counts``: domain k then receives
        ``weights_k * tokens_per_update``.
    refit_every, start_step, ignore_steps, fit_stride:
        Refit at steps ``itr >= start_step`` with ``itr % refit_every == 0`` (code: 1000, 500),
        on the steps from ``ignore_steps`` (1000) on, every ``fit_stride``-th (10).
    min_points:
        Points a domain needs for a fit (the code: 1).
    smoothing:
        ``"savgol"`` (code; ``savgol_window`` 101, ``savgol_order`` 3), ``"ema"`` (decay
        ``loss_smoothing``) or ``"none"``.
    x_axis, credit, average, floor_mode:
        See the module docstring (defaults ``"total"``, ``"counts"``, ``"previous"``,
        ``"clip"``: the code).
    h_decay, gamma, floor, alpha_max, alpha_min:
        Credit EMA decay (0.9), weight of ``pbar`` in ``pi`` (0.9), minimum weight (0.01), upper
        bound on ``alpha`` for the grid and mixopt fitters (0.8; the reference objective has its
        own penalty at 0.8), lower bound of the exponent in the slope (0.05).
    max_points:
        Keep only this many most recent steps (default None: all, as the code).
    fitter:
        ``"reference"`` (default), ``"mixopt"``, ``"grid"`` or a callable.
    nan_policy:
        ``"impute"`` (default), ``"skip"`` or ``"raise"``.
    """

    def __init__(self, k: int | Sequence[Any], *, prior: Any = None,
                 tokens_per_update: float = 1.0, refit_every: int = 1000, start_step: int = 500,
                 ignore_steps: int = 1000, fit_stride: int = 10, min_points: int = 1,
                 smoothing: str = "savgol", savgol_window: int = 101, savgol_order: int = 3,
                 loss_smoothing: float = 0.0, x_axis: str = "total", credit: str = "counts",
                 average: str = "previous", floor_mode: str = "clip", h_decay: float = 0.9,
                 gamma: float = 0.9, floor: float = 0.01, alpha_max: float = 0.8,
                 alpha_min: float = 0.05, max_points: int | None = None,
                 fitter: str | Callable[..., Any] = "reference", nan_policy: str = "impute",
                 update_interval: int | None = None) -> None:
        if not callable(fitter) and fitter not in ("reference", "mixopt", "grid"):
            raise MixtureError(
                f"fitter must be 'reference', 'mixopt', 'grid' or a callable, got {fitter!r}")
        self.fitter = fitter
        for name, val, ok in (("smoothing", smoothing, ("savgol", "ema", "none")),
                              ("x_axis", x_axis, ("total", "domain")),
                              ("credit", credit, ("counts", "mixture")),
                              ("average", average, ("previous", "inclusive")),
                              ("floor_mode", floor_mode, ("clip", "exact")),
                              ("nan_policy", nan_policy, ("impute", "skip", "raise"))):
            if val not in ok:
                raise MixtureError(f"{name} must be one of {ok}, got {val!r}")
        self.smoothing, self.x_axis, self.credit = smoothing, x_axis, credit
        self.average, self.floor_mode = average, floor_mode
        n, skills = parse_domains(k, "domains")
        self._init_base(n, skills, nan_policy="raise" if nan_policy == "impute" else nan_policy,
                        update_interval=update_interval)
        self.nan_policy = nan_policy
        self._allow_nan = nan_policy == "impute"
        if prior is None:
            mu = np.full(n, 1.0 / n)
        else:
            if isinstance(prior, Mapping):
                prior = [prior[s] for s in self.skills]
            try:
                mu = np.array(prior, dtype=np.float64)
            except (TypeError, ValueError):
                raise MixtureError(f"prior must be an array of numbers, got {prior!r}") from None
            if mu.shape != (n,) or not np.all(np.isfinite(mu)) or np.any(mu <= 0):
                raise MixtureError(f"prior must be {n} finite positive numbers, got {prior!r}")
            mu = mu / mu.sum()
        self.prior = mu
        t = float(tokens_per_update)
        if not np.isfinite(t) or t <= 0:
            raise MixtureError(f"tokens_per_update must be positive, got {tokens_per_update!r}")
        self.tokens_per_update = t
        self.refit_every = check_int(refit_every, "refit_every")
        self.start_step = check_int(start_step, "start_step", 0)
        self.ignore_steps = check_int(ignore_steps, "ignore_steps", 0)
        self.fit_stride = check_int(fit_stride, "fit_stride")
        self.min_points = check_int(min_points, "min_points")
        self.savgol_window = check_int(savgol_window, "savgol_window", 3)
        self.savgol_order = check_int(savgol_order, "savgol_order", 0)
        self.max_points = None if max_points is None else check_int(max_points, "max_points",
                                                                    self.min_points)
        self.loss_smoothing = check_fraction(loss_smoothing, "loss_smoothing", high=0.999)
        self.h_decay = check_fraction(h_decay, "h_decay")
        self.gamma = check_fraction(gamma, "gamma")
        self.floor = check_fraction(floor, "floor")
        if self.floor * n > 1:
            raise MixtureError(f"floor {floor} is infeasible for {n} domains (floor * k > 1)")
        self.alpha_max = check_fraction(alpha_max, "alpha_max", open_low=True, high=5.0)
        self.alpha_min = check_fraction(alpha_min, "alpha_min", high=5.0)
        self._w = mu.copy()
        self.seen = np.zeros(n)  # each domain's data seen so far
        self.h = mu.copy()
        self._cnt: list[np.ndarray] = []  # per step: counts
        self._loss: list[np.ndarray] = []  # per step: losses (imputed)
        self._row0 = 0  # step index of the first kept row
        self._cum0 = np.zeros(n)  # counts of the dropped rows
        self.params = {"eps": np.full(n, np.nan), "beta": np.full(n, np.nan),
                       "alpha": np.full(n, np.nan)}
        self.rho = mu.copy()
        self._pbar = mu.copy()
        self._rho_sum = np.zeros(n)
        self._t = 0

    # ------------------------------------------------------------------ the law's slope
    def _n_now(self) -> np.ndarray:
        if self.x_axis == "total":
            return np.full(self.n_skills, self.seen.sum())
        return self.seen

    def preference(self) -> np.ndarray:
        """Unnormalised ``rho = mu * max(alpha, alpha_min) (L(n) - eps) / n * sqrt(h)``."""
        a, b, e = self.params["alpha"], self.params["beta"], self.params["eps"]
        n = np.maximum(self._n_now(), 1e-12)
        pred = e + b * n ** (-a)
        slope = np.maximum(a, self.alpha_min) * (pred - e) / n
        return slope * self.prior * np.sqrt(self.h)

    # ------------------------------------------------------------------ update
    def _update(self, losses: np.ndarray, counts: Any = None) -> np.ndarray:
        k = self.n_skills
        itr = self._t
        if counts is None:
            c = self._w * self.tokens_per_update
        else:
            try:
                c = np.asarray(counts, dtype=np.float64)
            except (TypeError, ValueError):
                raise MixtureError(f"counts must be numbers, got {counts!r}") from None
            if c.shape != (k,) or not np.all(np.isfinite(c)) or np.any(c < 0):
                raise MixtureError(f"counts must be {k} finite non-negative numbers")
        L = self._impute(losses, c)
        self.seen = self.seen + c
        if self.credit == "counts" and counts is not None and c.sum() > 0:
            dist = c / c.sum()
        else:
            dist = self._w
        self.h = self.h_decay * self.h + (1.0 - self.h_decay) * dist
        self._cnt.append(c.copy())
        self._loss.append(L)
        if self.max_points is not None and len(self._cnt) > self.max_points:
            self._cum0 = self._cum0 + self._cnt.pop(0)
            self._loss.pop(0)
            self._row0 += 1
        self._t += 1
        if itr >= self.start_step and itr % self.refit_every == 0:
            self._refit()
        fitted = not np.isnan(self.params["alpha"]).any()
        rho = None
        if fitted and itr >= self.start_step:
            r = self.preference()
            s = r.sum()
            if s > 0 and np.isfinite(s):
                r = r / s
                rho = (clip_min_probability(r, self.floor) if self.floor_mode == "clip"
                       else floor_weights(r, self.floor))
        if self.average == "inclusive":
            rho = self.prior.copy() if rho is None else rho
            if self.floor_mode == "exact":
                rho = floor_weights(rho, self.floor)
            self.rho = rho
            self._rho_sum += rho
            pi = self.gamma * (self._rho_sum / self._t) + (1.0 - self.gamma) * rho
            return pi / pi.sum()
        if rho is None:
            return self._w
        self.rho = rho
        pi = self.gamma * self._pbar + (1.0 - self.gamma) * rho
        self._pbar = (1.0 - 1.0 / (itr + 1)) * self._pbar + rho / (itr + 1)
        return pi

    def _impute(self, losses: np.ndarray, c: np.ndarray) -> np.ndarray:
        miss = np.isnan(losses)
        if not miss.any():
            return losses.copy()
        L = losses.copy()
        if self._loss:
            L[miss] = self._loss[-1][miss]
        else:
            seen = ~miss
            if not seen.any():
                raise MixtureError("ADO: the first step's losses are all NaN (nothing to impute "
                                   "from)")
            wts = c[seen] if c[seen].sum() > 0 else np.ones(int(seen.sum()))
            L[miss] = float(np.average(losses[seen], weights=wts))
        return L

    # ------------------------------------------------------------------ fitting
    def fit_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(n, y, mask)``, each ``(k, T)``: the points the next refit uses."""
        C = self._cum0 + np.cumsum(np.array(self._cnt), axis=0)  # (T, k)
        Y = np.array(self._loss)
        if self.smoothing == "savgol":
            Y = savgol(Y, self.savgol_window, self.savgol_order)
        elif self.smoothing == "ema":
            s = self.loss_smoothing
            out = np.empty_like(Y)
            acc = Y[0]
            for i, row in enumerate(Y):
                acc = row if i == 0 else s * acc + (1 - s) * row
                out[i] = acc
            Y = out
        if self.x_axis == "total":
            C = np.repeat(C.sum(axis=1, keepdims=True), self.n_skills, axis=1)
        steps = self._row0 + np.arange(C.shape[0])
        keep = (steps >= self.ignore_steps) & ((steps - self.ignore_steps) % self.fit_stride == 0)
        N, Y = C[keep].T, Y[keep].T
        return N, Y, N > 0

    def _refit(self) -> None:
        N, Y, M = self.fit_data()
        k = self.n_skills
        if N.shape[1] == 0 or (M.sum(axis=1) < self.min_points).any():
            return
        if self.fitter == "grid":
            fit = fit_laws(np.where(M, N, 1.0), Y, alpha_max=self.alpha_max, mask=M)
            params = {key: fit[key].copy() for key in ("eps", "beta", "alpha")}
        else:
            params = {key: np.full(k, np.nan) for key in ("eps", "beta", "alpha")}
            for i in range(k):
                n_i, y_i = N[i][M[i]], Y[i][M[i]]
                try:
                    if self.fitter == "reference":
                        e, b, a, _ = fit_reference(n_i, y_i)
                    elif self.fitter == "mixopt":
                        e, b, a = fit_mixopt(n_i, y_i, alpha_max=self.alpha_max)
                    else:
                        e, b, a = self.fitter(n_i, y_i)
                except MixoptError:
                    return  # an invalid fit keeps the previous parameters, as the code does
                params["eps"][i], params["beta"][i], params["alpha"][i] = e, b, a
        if all(np.all(np.isfinite(v)) for v in params.values()):
            self.params = params

    # ------------------------------------------------------------------ state
    def _params(self) -> dict[str, Any]:
        # a callable fitter is recorded by name: load the state into a rule built with it
        fitter = self.fitter if isinstance(self.fitter, str) else \
            f"callable:{getattr(self.fitter, '__name__', type(self.fitter).__name__)}"
        return {"k": self.skills, "prior": self.prior, "tokens_per_update": self.tokens_per_update,
                "refit_every": self.refit_every, "start_step": self.start_step,
                "ignore_steps": self.ignore_steps, "fit_stride": self.fit_stride,
                "min_points": self.min_points, "smoothing": self.smoothing,
                "savgol_window": self.savgol_window, "savgol_order": self.savgol_order,
                "loss_smoothing": self.loss_smoothing, "x_axis": self.x_axis,
                "credit": self.credit, "average": self.average, "floor_mode": self.floor_mode,
                "h_decay": self.h_decay, "gamma": self.gamma, "floor": self.floor,
                "alpha_max": self.alpha_max, "alpha_min": self.alpha_min,
                "max_points": self.max_points, "fitter": fitter,
                "nan_policy": self.nan_policy, "update_interval": self.update_interval}

    def _get_state(self) -> dict[str, Any]:
        return {"seen": encode(self.seen), "h": encode(self.h),
                "counts": [encode(c) for c in self._cnt],
                "losses": [encode(x) for x in self._loss], "row0": self._row0,
                "cum0": encode(self._cum0),
                "params": {key: encode(v) for key, v in self.params.items()},
                "rho": encode(self.rho), "pbar": encode(self._pbar),
                "rho_sum": encode(self._rho_sum), "t": self._t}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        super()._set_state(state)
        k = self.n_skills
        try:
            seen = decode(state["seen"], (k,), "state.seen", low=0.0)
            h = decode(state["h"], (k,), "state.h", finite=True)
            for key in ("counts", "losses"):
                if not isinstance(state[key], list):
                    raise MixtureError(f"bad state_dict: state.{key}: expected a list of rows, "
                                       f"got {state[key]!r:.80}")
            cnt = [decode(c, (k,), f"state.counts[{i}]", low=0.0)
                   for i, c in enumerate(state["counts"])]
            loss = [decode(x, (k,), f"state.losses[{i}]") for i, x in enumerate(state["losses"])]
            if any(np.isinf(x).any() for x in loss):
                raise MixtureError("bad state_dict: state.losses: expected finite numbers or "
                                   "null, got inf")
            row0 = state_int(state, "row0", "state.row0")
            cum0 = decode(state["cum0"], (k,), "state.cum0", low=0.0)
            if not isinstance(state["params"], Mapping):
                raise MixtureError("bad state_dict: state.params: expected a mapping")
            params = {key: decode(state["params"][key], (k,), f"state.params.{key}")
                      for key in ("eps", "beta", "alpha")}
            if any(np.isinf(v).any() for v in params.values()):
                raise MixtureError("bad state_dict: state.params: expected finite numbers or "
                                   "null (not fitted yet), got inf")
            rho = decode(state["rho"], (k,), "state.rho", finite=True)
            pbar = decode(state["pbar"], (k,), "state.pbar", finite=True)
            rho_sum = decode(state["rho_sum"], (k,), "state.rho_sum", finite=True)
            t = state_int(state, "t", "state.t")
        except (KeyError, TypeError) as exc:
            raise MixtureError(f"bad state_dict: ADO state lacks or mangles {exc}") from None
        if len(cnt) != len(loss):
            raise MixtureError("bad state_dict: ADO counts and losses differ in length")
        self.seen, self.h = seen, h
        self._cnt, self._loss, self._row0, self._cum0 = cnt, loss, row0, cum0
        self.params, self.rho, self._pbar, self._rho_sum, self._t = params, rho, pbar, rho_sum, t
