"""Run configurations of a proxy swarm: one JSON file per mixture, for the training jobs.

``write_configs(swarm, out_dir, template=...)`` is the step after :func:`mixopt.mixture.design`
in the RegMix / olmix workflow: each proxy run reads its mixture (and the settings all proxies
share) from its own file. The files are plain JSON so any launcher can read them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mixopt.errors import MixtureError
from mixopt.mixture._inputs import simplex_frame

__all__ = ["write_configs"]

_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


def write_configs(swarm: pd.DataFrame, out_dir: str | Path, *,
                  template: Mapping[str, Any] | None = None) -> list[Path]:
    """Write one JSON run configuration per swarm row.

    Each file is ``out_dir/run_<id>.json`` holding ``{"run": id, "weights": {domain: weight},
    **template}``; ``template`` carries the settings every proxy shares (model size, tokens,
    learning rate...). Weights are written with full precision, so reading the files back gives
    the swarm exactly.

    Parameters
    ----------
    swarm
        DataFrame index run id (integers, or strings of letters, digits, ``_ . -``), one column
        per domain, rows on the simplex (e.g. from :func:`design`).
    out_dir
        Folder to write into (created with its parents).
    template
        JSON-serialisable mapping of extra keys; may not contain ``run`` or ``weights``.

    Returns
    -------
    list of pathlib.Path
        The files written, in the swarm's row order.
    """
    frame = simplex_frame(swarm, "swarm", None)
    if len(frame) == 0:
        raise MixtureError("swarm has no rows")
    cols = [c for c in frame.columns if not isinstance(c, str) or not c]
    if cols:
        raise MixtureError(f"swarm: domain columns must be non-empty strings, got {cols[:5]!r}")
    ids = []
    for i in frame.index:
        if isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            ids.append(int(i))
        elif isinstance(i, str) and _ID_RE.match(i):
            ids.append(i)
        else:
            raise MixtureError(
                f"swarm: run id {i!r} must be an integer or a string of letters, digits, _ . -")
    if len(set(map(str, ids))) != len(ids):
        raise MixtureError("swarm: run ids must be unique")
    extra: dict[str, Any] = {}
    if template is not None:
        if not isinstance(template, Mapping):
            raise MixtureError(f"template must be a mapping, got {type(template).__name__}")
        clash = [k for k in ("run", "weights") if k in template]
        if clash:
            raise MixtureError(f"template may not set {clash!r}; write_configs fills them")
        extra = dict(template)
        try:
            json.dumps(extra, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise MixtureError(f"template must be JSON-serialisable: {exc}") from None
    if not isinstance(out_dir, (str, os.PathLike)) or str(out_dir) == "":
        raise MixtureError(f"out_dir must be a folder path (a non-empty str or os.PathLike), "
                           f"got {out_dir!r:.60}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise MixtureError(f"out_dir {str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    values = frame.to_numpy()
    for run, row in zip(ids, values):
        payload = {"run": run, "weights": {d: float(v) for d, v in zip(frame.columns, row)},
                   **extra}
        path = out / f"run_{run}.json"
        path.write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
