"""``mixopt plan``: plan a budget from saved fits.

One fit of an (N, D) law (e.g. chinchilla) prints the compute-optimal allocation per budget;
several fits of L(N, D, D_spec) laws, one per domain, print the split plan. A domain's name is
the file stem, or ``name=path``.

    mixopt plan fit.json --budget 1e21 1e22
    mixopt plan code=code.json math=math.json --budget 1e21 --weights 0.7 0.3 --json

Every option is checked before any fit is loaded or any plan solved. Each plan says where it
leaves the range of the data its fits were made on (``extrapolation`` in the JSON: one record per
quantity outside, with the ratio to the nearest end of the range).

``--json`` prints strict JSON (RFC 8259: no ``NaN``/``Infinity`` tokens): a number that is NaN
or infinite is written as ``null``, its field is listed in ``non_finite``, ``json_status`` is
``"non-finite"`` (else ``"ok"``) and ``success`` is false.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from mixopt.errors import PlanError

__all__ = ["main", "strict_json"]


def strict_json(payload: Any) -> tuple[Any, list[str]]:
    """``payload`` with every NaN or infinite number replaced by ``None`` (JSON ``null``), and
    the paths of the replaced numbers (``"loss.code"``, ``"N[2]"``): strict JSON (RFC 8259)
    has no ``NaN`` or ``Infinity`` token, so the plan reports them as null plus a status."""
    bad: list[str] = []

    def walk(x: Any, path: str) -> Any:
        if isinstance(x, dict):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(x)]
        if isinstance(x, float) and not math.isfinite(x):
            bad.append(path)
            return None
        return x

    return walk(payload, ""), bad


def _report(d: dict[str, Any]) -> dict[str, Any]:
    """One result's dict as strict JSON with ``json_status`` (``"ok"`` or ``"non-finite"``) and
    ``non_finite`` (the fields that were NaN or infinite, now null)."""
    clean, bad = strict_json(d)
    clean["json_status"] = "ok" if not bad else "non-finite"
    clean["non_finite"] = bad
    if bad and clean.get("success") is True:
        clean["success"] = False
        clean["message"] = (f"{clean.get('message', '')} [non-finite result in {bad}: not a "
                            "usable plan]").strip()
    return clean


def _dump(payload: Any) -> str:
    return json.dumps(payload, indent=1, allow_nan=False)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mixopt plan", description=__doc__.split("\n\n")[0])
    p.add_argument("fits", nargs="+", help="saved fit files (FIT.json or name=FIT.json)")
    p.add_argument("--budget", type=float, nargs="+", required=True, help="FLOPs")
    p.add_argument("--weights", type=float, nargs="+", help="domain weights (split plans)")
    p.add_argument("--cap", action="append", default=[], metavar="DOMAIN=TOKENS",
                   help="cap on a domain's specialisation tokens (repeatable)")
    p.add_argument("--objective", choices=("weighted", "worst"), default="weighted")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def _specs(args: argparse.Namespace) -> tuple[dict[str, Path], dict[str, float]]:
    """Every option checked before any file is read or any plan solved: domain names and
    files, budgets, weights and caps. Returns ``({domain: path}, caps)``."""
    from mixopt.plan._inputs import check_budget

    paths: dict[str, Path] = {}
    for spec in args.fits:
        name, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
        name = name or Path(path).stem
        if not path:
            raise PlanError(f"fit {spec!r}: expected FIT.json or name=FIT.json")
        if name in paths:
            raise PlanError(f"domain {name!r} given twice; name files as name=path")
        if not Path(path).is_file():
            raise PlanError(f"fit {spec!r}: no such file: {path!r}")
        paths[name] = Path(path)
    check_budget(args.budget, "--budget")
    if args.weights is not None:
        w = args.weights
        if len(w) != len(paths):
            raise PlanError(f"--weights has {len(w)} values for {len(paths)} fits "
                            f"{list(paths)}")
        if any(not math.isfinite(x) or x < 0 for x in w):
            raise PlanError(f"--weights must be finite and >= 0, got {w}")
        if abs(sum(w) - 1.0) > 1e-9:
            raise PlanError(f"--weights must sum to 1; they sum to {sum(w):.6g}")
    caps: dict[str, float] = {}
    for c in args.cap:
        d, eq, v = c.partition("=")
        try:
            value = float(v)
        except ValueError:
            value = math.nan
        if not eq or not d or math.isnan(value):
            raise PlanError(f"--cap {c!r}: expected DOMAIN=TOKENS") from None
        if d not in paths:
            raise PlanError(f"--cap {c!r}: unknown domain {d!r}; domains are {list(paths)}")
        if value < 0:
            raise PlanError(f"--cap {c!r}: a cap is >= 0 tokens")
        caps[d] = value
    return paths, caps


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    paths, caps = _specs(args)
    from mixopt import load
    from mixopt.plan import compute_optimal, split

    fits = {name: load(path) for name, path in paths.items()}
    out = sys.stdout
    if len(fits) == 1 and "D_spec" not in next(iter(fits.values())).law.variables:
        if args.weights or args.cap:
            raise PlanError("--weights and --cap apply to split plans (several domain fits)")
        budget = args.budget[0] if len(args.budget) == 1 else args.budget
        fit = next(iter(fits.values()))
        res = compute_optimal(fit, budget)  # with its extrapolation records
        out.write((_dump(_report(res.to_dict())) if args.json else res.summary()) + "\n")
        return 0
    results = [split(fits, b, weights=args.weights, caps=caps or None,
                     objective=args.objective) for b in args.budget]
    if args.json:
        payload = [_report(r.to_dict()) for r in results]
        out.write(_dump(payload[0] if len(payload) == 1 else payload) + "\n")
    else:
        out.write("\n\n".join(r.summary() for r in results) + "\n")
    return 0
