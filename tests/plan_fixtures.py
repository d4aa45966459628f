"""Fits as the planners see them, shared by the plan tests (test_plan_io, test_plan_extrapolation):
a law, its parameters, the runs it was made on and their weights, without running a fit."""

from __future__ import annotations

import numpy as np
import pandas as pd

import mixopt


class Fitted:
    """A fit as the planners see it (law, params) plus the runs it was made on."""

    def __init__(self, law, params, data, weights=None):
        self.law, self.params, self.data = law, params, data
        self.weights = np.ones(len(data)) if weights is None else np.asarray(weights)


def mixture_fits() -> dict[str, Fitted]:
    """Two targets of a two-domain ``mixing_chinchilla`` law, on 6 runs (N 1e7 / 1e8, D 1e9 /
    2e9, web share 0.3-0.7), each with the losses its own parameters predict."""
    law = mixopt.laws.get("mixing_chinchilla", domains=["web", "code"])
    p1 = {"E": 1.8, "alpha": 0.34, "beta": 0.28, "ta_web": 6.0, "ta_code": 6.2,
          "tb_web": 5.8, "tb_code": 6.6}
    p2 = {"E": 1.5, "alpha": 0.34, "beta": 0.28, "ta_web": 6.3, "ta_code": 5.9,
          "tb_web": 6.9, "tb_code": 5.6}
    h = np.array([0.3, 0.5, 0.7, 0.3, 0.5, 0.7])
    data = pd.DataFrame({"N": np.repeat([1e7, 1e8], 3), "D": np.repeat([1e9, 2e9], 3),
                         "web": h, "code": 1 - h})
    return {"web_val": Fitted(law, p1, data.assign(loss=law.predict(p1, data))),
            "code_val": Fitted(law, p2, data.assign(loss=law.predict(p2, data)))}
