"""Bad-input probe over mixopt's public entry points (issue 16): a measurement, not a test.

    cd /work/main && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python \
        benchmarks/bad_input_probe.py [-v]

Each probe calls one entry point with one argument replaced by a bad value and classifies the
outcome: ``mixopt`` (a MixoptError), ``other`` (another exception type), ``nan`` (returned NaN
or inf without raising, in a result that does not report itself as failed), ``silent``
(returned normally), ``hang`` (no result within the limit: 5 s, 60 s for the mixture + split
planner), ``legal`` (returned normally on an input that is in fact valid for that argument,
listed in ALLOWED with the reason). Prints the counts per entry point, the totals and (``-v``)
every outcome that is neither ``mixopt`` nor ``legal``. The probes are deterministic (fixed
inputs, seeds), so the counts are reproducible; the hypothesis suites in
tests/test_reliability_*.py are the tests.

Entry points: mixopt.load, the online rules and their states, the sampler and controller
states, procedural tasks, skills, data validation, the plan CLI, issue 16's reproducers, every
registered law (get, predict with each parameter and column replaced), the planners
(compute_optimal, best_loss_at, budget_for_loss, split, frontier, mixture, mixture_path,
mixture_split), saved plans (plan.load with each field tampered) and mixopt.mixture (design,
caps, write_configs, fit, load, predict, optimize, cross_validate, rank_transfer, read_regmix).
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import re
import signal
import sys
import tempfile
import traceback
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

import mixopt
import mixopt.cli
from mixopt import online, procedural, skills
from mixopt.data import as_arrays, validate
from mixopt.errors import MixoptError

warnings.simplefilter("ignore")
LIMIT = 5

NAN, INF = float("nan"), float("inf")

BAD_SCALARS = [None, "x", "", True, NAN, INF, -INF, -1, -1.5, 1e300, 10**12, 1 + 2j,
               datetime.datetime(2020, 1, 1), [], {}, object(), b"\xff", [NAN], [[1.0]]]


class Hang(Exception):
    pass


def _alarm(*_):
    raise Hang()


signal.signal(signal.SIGALRM, _alarm)


def has_nonfinite(x, depth=0) -> bool:
    if depth > 4:
        return False
    if isinstance(x, (float, np.floating)):
        return not np.isfinite(x)
    if isinstance(x, np.ndarray) and x.dtype.kind in "fc":
        return bool(~np.isfinite(x).all())
    if isinstance(x, (list, tuple)):
        return any(has_nonfinite(v, depth + 1) for v in x[:50])
    if isinstance(x, dict):
        return any(has_nonfinite(v, depth + 1) for v in list(x.values())[:50])
    for attr in ("weights", "loss", "N", "D", "tokens", "params", "matrix"):
        if hasattr(x, attr) and not callable(getattr(type(x), attr, None)):
            try:
                if has_nonfinite(getattr(x, attr), depth + 1):
                    return True
            except Exception:
                pass
    return False


#: Inputs that are valid for their argument although they appear in the bad-value lists (a
#: probe that returns normally on one of them is a correct result, counted as ``valid``).
ALLOWED = [
    r"procedural.get: \w+\((skill_weights|min_digits|n|max_depth)=None\)",  # optional: default
    r"procedural.get: \w+\((shuffle|reverse)=True\)",  # boolean options
    r"procedural.get: eca\(rule=0\)",  # rule 0 is an ECA rule
    r"procedural.get: lego\((scratchpad=(None|True)|distractors=0)\)",  # none / values / none
    r"procedural.get: (eca|stack)\(\w+=0\)",  # closed probabilities
    r"online.(DoReMi|ODM|ADO|EMA).update: losses=\[(None|nan)",  # absent domains (nan_policy)
    r"load_state_dict: rounds=1000000000000",  # a long run
    r"load_state_dict: history=\{\}",  # no history kept
    r"online.\w+.load_state_dict: state=\{\}",  # stateless rules
    r"online.SkillIt.load_state_dict: state.L0=None",  # before the first evaluation
    r"online.Aioli.load_state_dict: state.(A|A_bar|prev)=None",  # no estimate yet
    r"online.Aioli.load_state_dict: state.pos=-1",  # no probe segment yet
    r"online.ODM\(\): warmup_steps=1000000000000",
    r"online.ODM\(\): k=\[(nan|\[1.0\])\]",  # one domain labelled 'nan' / '[1.0]'
    r"online.DoReMi\(\): eta=(1e\+300|1000000000000)",  # a large (finite) step size
    r"seed=1000000000000",
    r"world_size=1000000000000|rank=1000000000000",  # a state saved at another world size
    r"MixtureController.load_state_dict: (next_update=1000000000000|history=\[\])",
    r"skills.design: steps=1000000000000",
    r"skills.design: skills=\[(nan|\[1.0\])\]|seeds=\[nan\]",  # labels / seed ids
    r"skills.simulate_ablations: noise=(1e\+300|1000000000000)",
    r"data.as_arrays: loss=",  # as_arrays reads the variables only
    r"data.as_arrays: (N|D)=\[\[1\], \[2\]\]",  # (2, 1) broadcasts against (2,)
]
ALLOWED.append(r"skills.SkillGraph(\(\)|.from_dict): (train|eval)_skills=None")  # default
ALLOWED.append(r"skills.SkillGraph.\w+: (value|threshold)=(-1|-1.5|1e\+300|1000000000000)$")
ALLOWED.append(r"MixtureSampler.skip: n=10\*\*9")
ALLOWED.append(r"curves.tokens_to_reach: target=(1000000000000|1e\+300)$")  # reached at once
ALLOWED.append(r"plan.as_flop_model: None$")  # the default 6 N D
ALLOWED.append(r"plan.(tokens_to_steps|steps_to_tokens): (batch_size|tokens)="
               r"(1000000000000|1e\+300|\[\[1.0\]\]|\[\])$")  # large, 2-D or empty arrays
# the entry points added in session 5 (laws, planners, saved plans, mixopt.mixture)
ALLOWED += [
    r"laws\.\w+\.predict: \w+=(1000000000000|1e\+300)$",  # large values inside wide bounds
    r"law\.predict: ([EAB]|N)=(1000000000000|1e\+300)$",
    r"law\.predict: N=(\[\[1.0\]\]|\[\])$",  # broadcasting / empty arrays
    r"laws\.\w+\.predict: data\.\w+=(1000000000000|1e\+300|\[\[1.0\]\])$",
    r"laws\.\w+\.predict: bounds=(None|True|\{\})$",  # the law's own bounds
    r"laws\.\w+\.predict: data\.(D_spec|web|code|math)=\[0.0, 0.0, 0.0\]$",  # unused
    r"laws\.mixing\.predict: t_\w+=(-1|-1.5)$",  # slopes may be negative (bounds)
    r"laws\.mixing_chinchilla\.predict: t[ab]_\w+=(-1|-1.5)$",  # log-scale coefficients
    r"laws\.get: \w+\(max_exponent=(1000000000000|1e\+300|inf)\)$",  # wider exponent range
    r"laws\.get: mixing\(components=\[nan\]\)$",  # a column named 'nan'
    r"mixture\.caps: (max_epochs|target_tokens)=(1000000000000|1e\+300)$",
    r"mixture\.design: (max_ratio|round_to)=None$|mixture\.design: max_ratio=(1e12|1e\+300"
    r"|1000000000000)$",
    r"mixture\.fit: metrics\[0, 0\]=(1000000000000|1e\+300)$",  # a large (finite) loss
    r"mixture\.load: metrics/web_val(/\d)?=1e\+300$",
    r"mixture\.load: runs/\d='x'$",  # string run ids
    r"mixture\.optimize: (n_samples|top_k|max_iter|rounds)=",  # counts: large is slow, valid
    r"mixture\.optimize: (caps|floors|prior)=None$|mixture\.optimize: kl=",
    r"mixture\.(cross_validate|rank_transfer|fit|write_configs): \w+=None$",
    r"mixture\.write_configs: out_dir='x'$",  # a folder named x (in a temporary cwd)
    r"plan\.\w+(\(budget\))?: (weights|caps|floors|tokens|flops|max_D|max_N|N|D|N_range|"
    r"spec_caps|gp|n_starts)=None$",  # optional arguments
    r"plan\.\w+(\(budget\))?: (budget|budgets|min_N|max_D|max_N|N|D|target_loss|"
    r"caps\[math\]|caps)=(1000000000000|1e\+300|inf|\{\})$",  # large (finite) numbers
    r"plan\.split: caps\[math\]=-?0$",
    r"plan\.load\(\w+\): .*(message|law|laws/\w+|solver|flops|flop_model|outside/\d)="
    r"('x'|'nan')$",  # free text
    r"plan\.load\(\w+\): (constraints|extrapolation)=(\{\}|\[\])$",  # dropped records
    r"plan\.load\(\w+\): (extrapolation|baselines)=None$",  # "not checked" / not solved
    r"plan\.load\(\w+\): success=True$",  # the saved plan already succeeded: unchanged
    r"plan\.load\(\w+\): caps=\{\}$|plan\.load\(\w+\): outside=\[\]$",
    r"plan\.load\(MixtureAllocation\): budget=None$",  # a fixed-scale plan
    r"laws\.(additive|multiplicative|transfer)\.predict: data\.D=\[0.0, 0.0, 0.0\]$",  # row 0
    # has D = D_spec = 0 (no training tokens): the law's loss is infinite there, correctly
    r"mixture\.(optimize|write_configs): (caps|floors|template)=\{\}$",  # empty: no bounds
    r"plan\.(mixture|mixture_split): (floors|spec_caps)=\{\}$",
    r"mixture\.cross_validate: progress=True$|plan\.split: baselines=True$",  # booleans
    r"mixture\.optimize: tol=|plan\.split: n_starts=1000000000000$",  # valid, loose/capped
    r"mixture\.load: surrogates/web_val/options=\{\}$",  # loglinear: defaults apply
]
ALLOWED_RE = [re.compile(a) for a in ALLOWED]

results: dict[str, Counter] = defaultdict(Counter)
details: list[str] = []


def probe(entry: str, what: str, fn, limit: float = LIMIT) -> None:
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        out = fn()
        kind = ("legal" if isinstance(out, str) and out == "FIXED"
                else "nan" if has_nonfinite(out) and getattr(out, "success", True) is not False
                else "silent")
    except MixoptError:
        kind = "mixopt"
    except Hang:
        kind = "hang"
    except SystemExit as exc:  # argparse: usage message and exit status 2 (a clean CLI refusal)
        kind = "mixopt" if exc.code == 2 else "other"
    except BaseException as exc:  # noqa: BLE001
        kind = "other"
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        what = (f"{what}: {type(exc).__name__}: {str(exc)[:90]} @ "
                f"{Path(tb.filename).name}:{tb.lineno}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if kind == "silent" and any(a.search(f"{entry}: {what}") for a in ALLOWED_RE):
        kind = "legal"
    results[entry][kind] += 1
    if kind not in ("mixopt", "legal"):
        details.append(f"[{kind}] {entry}: {what}")


def replace_each(entry, build, valid: dict, allowed: dict | None = None, limit: float = LIMIT):
    """Call build(**kwargs) with each kwarg replaced by each bad scalar (unless allowed)."""
    allowed = allowed or {}
    for key in valid:
        for bad in BAD_SCALARS:
            if any(bad is a or (type(bad) is type(a) and _eq(bad, a))
                   for a in allowed.get(key, [])):
                continue
            kw = dict(valid)
            kw[key] = bad
            probe(entry, f"{key}={bad!r:.40}", lambda kw=kw: build(**kw), limit)


def _eq(a, b):
    try:
        return bool(a == b)
    except Exception:
        return False


tmp = Path(tempfile.mkdtemp())
os.chdir(tmp)  # an entry point given "" as a folder must not write into the checkout

# ------------------------------------------------------------------ mixopt.load
law = mixopt.laws.get("chinchilla")
T = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
N = np.repeat([1e7, 1e8, 1e9], 3)
D = np.tile([1e9, 1e10, 1e11], 3)
fit = mixopt.fitting.FitResult(law=law, params=dict(T), fixed={}, objective=0.0, status=0,
                               message="", n_starts=1, nit=1, nfev=1,
                               data=pd.DataFrame({"N": N, "D": D,
                                                  "loss": law.predict(T, {"N": N, "D": D})}),
                               weights=np.ones(9), delta=1e-3, bounds=law.bounds)
base = fit.to_dict()
legit = {"message", "time", "nit", "nfev", "n_starts", "objective", "status", "delta", "fixed"}


def load_payload(d):
    p = tmp / "f.json"
    p.write_text(json.dumps(d) if not isinstance(d, str) else d)
    return mixopt.load(p)


def walk_paths(d, prefix=()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield prefix + (k,)
            yield from walk_paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d[:2]):
            yield prefix + (i,)
            yield from walk_paths(v, prefix + (i,))


for path in list(walk_paths(base)):
    if path[0] in legit or path[0] == "law" and path[-1] == "options":
        continue
    for bad in (None, "x", -1.0, True, "nan", [], {}):
        d = copy.deepcopy(base)
        ref = d
        for k in path[:-1]:
            ref = ref[k]
        if isinstance(ref[path[-1]], str) and isinstance(bad, str) and path[-1] != "kind":
            continue
        if path[0] == "bounds" and bad == -1.0:
            continue  # a lower bound of -1 can be valid
        ref[path[-1]] = bad
        probe("mixopt.load", f"{'/'.join(map(str, path))}={bad!r}", lambda d=d: load_payload(d))
for text in ('{"kind": "FitResult", "x": NaN}', "[" * 50000, "\x00\x01", "[]", "null"):
    probe("mixopt.load", f"text {text[:20]!r}", lambda t=text: load_payload(t))
probe("mixopt.load", "path=None", lambda: mixopt.load(None))
probe("mixopt.load", "path=dir", lambda: mixopt.load(tmp))

# ------------------------------------------------------------------ online rules
RULES = {
    "Static": lambda: online.Static([0.2, 0.3, 0.5]),
    "SkillIt": lambda: online.SkillIt(np.eye(3) * 0.5 + 0.1),
    "DoReMi": lambda: online.DoReMi([1.0, 1.0, 1.0]),
    "ODM": lambda: online.ODM(3, warmup_steps=0),
    "Aioli": lambda: online.Aioli(3),
    "ADO": lambda: online.ADO(3),
    "EMA": lambda: online.EMA(online.ODM(3, warmup_steps=0), 0.5),
}
for name, make in RULES.items():
    rule = make()
    for bad in ([None, 1.0, 1.0], [NAN] * 3, [INF, 1, 1], "abc", [1, 2], [[1, 2, 3]], None,
                {"a": 1}, [True, 1, 1], [1 + 1j, 1, 1]):
        probe(f"online.{name}.update", f"losses={bad!r}",
              lambda m=make, b=bad: m().update(b))
    st = rule.state_dict()
    for key in ("weights", "rounds", "history", "state", "rule"):
        for bad in BAD_SCALARS:
            s2 = copy.deepcopy(st)
            s2[key] = bad
            probe(f"online.{name}.load_state_dict", f"{key}={bad!r:.40}",
                  lambda s2=s2, m=make: m().load_state_dict(s2))
    for key in st["state"]:
        for bad in (None, "x", [NAN] * 3, True, -1, {}):
            s2 = copy.deepcopy(st)
            s2["state"][key] = bad
            r = make()

            def go(r=r, s2=s2, key=key):
                r.load_state_dict(s2)
                # a state that loads must still give finite weights
                w = r.update(np.ones(r.n_eval) * 2.0)
                if not np.all(np.isfinite(w)):
                    return w
                raise_ok = s2["state"][key]  # accepted: only if harmless for this field
                return ("accepted", raise_ok)

            probe(f"online.{name}.load_state_dict", f"state.{key}={bad!r:.40}", go)
replace_each("online.ODM()", lambda **kw: online.ODM(**kw), {"k": 3, "warmup_steps": 0})
replace_each("online.DoReMi()", lambda **kw: online.DoReMi(**kw),
             {"reference_losses": [1.0, 1.0], "eta": 1.0, "smoothing": 1e-3})

# ------------------------------------------------------------------ train
try:
    from mixopt.train import MixtureController, MixtureSampler
except ImportError:  # no torch
    MixtureSampler = None
if MixtureSampler is not None:
    replace_each("train.MixtureSampler()", lambda **kw: MixtureSampler(**kw),
                 {"sizes": [3, 4], "weights": [0.5, 0.5], "seed": 0, "rank": 0,
                  "world_size": 1})
    s = MixtureSampler([5, 7, None], [0.2, 0.3, 0.5])
    s.next_batch(11)
    st = s.state_dict()
    for key in st:
        for bad in BAD_SCALARS + [[NAN, 0, 0], [1e300, 0, -1e300], [-5, 0, 0]]:
            s2 = copy.deepcopy(st)
            s2[key] = bad

            def go(s2=s2):
                x = MixtureSampler([5, 7, None], [0.2, 0.3, 0.5])
                x.load_state_dict(s2)
                return x.next_batch(5)

            probe("train.MixtureSampler.load_state_dict", f"{key}={bad!r:.40}", go)
    for bad in BAD_SCALARS:
        probe("train.MixtureSampler.next_batch", f"n={bad!r:.30}",
              lambda b=bad: MixtureSampler([3], [1.0]).next_batch(b))
        probe("train.MixtureSampler.set_weights", f"w={bad!r:.30}",
              lambda b=bad: MixtureSampler([3, 3], [0.5, 0.5]).set_weights(b))
    probe("train.MixtureSampler.skip", "n=10**9",
          lambda: MixtureSampler([3, 3], [0.5, 0.5]).skip(10**9) or "skipped")
    rule = online.ODM(3, warmup_steps=0, update_interval=2)
    c = MixtureController(rule, MixtureSampler([5, 7, None], rule.weights), lambda: [1, 2, 3])
    c.step(2)
    st = c.state_dict()
    for key in st["controller"]:
        for bad in BAD_SCALARS:
            s2 = copy.deepcopy(st)
            s2["controller"][key] = bad

            def go(s2=s2):
                r = online.ODM(3, warmup_steps=0, update_interval=2)
                x = MixtureController(r, MixtureSampler([5, 7, None], r.weights),
                                      lambda: [1, 2, 3])
                x.load_state_dict(s2)
                return x.weights

            probe("train.MixtureController.load_state_dict", f"{key}={bad!r:.40}", go)
    s2 = copy.deepcopy(st)
    s2["controller"]["weights"] = [1.0, 0.0, 0.0]

    def mismatch():
        r = online.ODM(3, warmup_steps=0, update_interval=2)
        x = MixtureController(r, MixtureSampler([5, 7, None], r.weights), lambda: [1, 2, 3])
        x.load_state_dict(s2)

    probe("train.MixtureController.load_state_dict", "weights disagree", mismatch)

# ------------------------------------------------------------------ procedural
rng = np.random.default_rng(0)
for name in procedural.names():
    for opt in procedural.registry.options(name):
        for bad in (None, "x", True, NAN, -1, 0, 10**12, 2.5, [1], {}):
            probe("procedural.get", f"{name}({opt}={bad!r})",
                  lambda n=name, o=opt, b=bad: procedural.get(n, **{o: b}).sample(rng, 2, 256))
    task = procedural.get(name)
    for key, bad in (("batch_size", 10**12), ("batch_size", 0), ("length", 10**9),
                     ("batch_size", True), ("length", NAN), ("rng", 0)):
        kw = {"rng": rng, "batch_size": 2, "length": 256, key: bad}
        probe("procedural.sample", f"{name}.sample({key}={bad!r})",
              lambda t=task, kw=kw: t.sample(**kw))

# ------------------------------------------------------------------ skills
replace_each("skills.design", lambda **kw: skills.design(**kw),
             {"skills": 3, "method": "regression", "steps": 10, "seeds": 1, "seed": 0})
probe("skills.design", "seed missing (regression)",
      lambda: skills.design(3, method="regression", steps=10))
g = skills.SkillGraph(np.eye(2) * 0.01)
runs = skills.design(g.train_skills, method="linear", steps=10)
replace_each("skills.simulate_ablations", lambda **kw: skills.simulate_ablations(**kw),
             {"graph": g, "design": runs, "noise": 0.01, "seed": 0})
probe("skills.simulate_ablations", "seed missing with noise",
      lambda: skills.simulate_ablations(g, runs, noise=0.01))

# SkillGraph, its methods and persistence, estimate
replace_each("skills.SkillGraph()", lambda **kw: skills.SkillGraph(**kw),
             {"matrix": np.eye(2), "train_skills": ["a", "b"], "eval_skills": ["a", "b"]})
G = skills.SkillGraph(np.eye(3) * 0.5 + 0.1)
for meth, arg in (("threshold", "value"), ("normalize", "method"), ("learning_order",
                                                                       "threshold"),
                  ("prerequisites", "skill"), ("restrict", "targets"), ("edges", "threshold")):
    for bad in BAD_SCALARS:
        probe(f"skills.SkillGraph.{meth}", f"{arg}={bad!r:.30}",
              lambda m=meth, a=arg, b=bad: getattr(G, m)(**{a: b}))
gd = G.to_dict()
for key in gd:
    for bad in BAD_SCALARS:
        probe("skills.SkillGraph.from_dict", f"{key}={bad!r:.30}",
              lambda k=key, b=bad: skills.SkillGraph.from_dict(dict(gd, **{k: b})))
sim = skills.simulate_ablations(g, runs, noise=0.001, seed=0)
for key in ("mixtures", "evals"):
    for bad in BAD_SCALARS + [pd.DataFrame()]:
        kw = {"mixtures": sim.mixtures, "evals": sim.evals, key: bad}
        probe("skills.estimate", f"{key}={bad!r:.30}", lambda kw=kw: skills.estimate(**kw))
for col in ("loss", "step", "skill", "run"):
    for bad in (NAN, -1.0, None, "x", True):
        ev = sim.evals.copy()
        ev[col] = ev[col].astype(object)
        ev.loc[ev.index[0], col] = bad
        probe("skills.estimate", f"evals.{col}[0]={bad!r}",
              lambda ev=ev: skills.estimate(sim.mixtures, ev))

# ------------------------------------------------------------------ data
frame = {"N": [1e7, 1e8], "D": [1e9, 1e10], "loss": [3.0, 2.5]}
for col in ("N", "D", "loss"):
    for bad in ([True, False], [1 + 1j, 2], [datetime.date(2020, 1, 1), 1.0], ["a", "b"],
                [NAN, 1.0], [INF, 1.0], [-1.0, 1.0], [None, 1.0], [[1], [2]]):
        d = dict(frame)
        d[col] = bad
        probe("data.validate", f"{col}={bad!r:.40}",
              lambda d=d: validate(pd.DataFrame(d), ["N", "D"]))
        probe("data.as_arrays", f"{col}={bad!r:.40}", lambda d=d: as_arrays(d, ["N", "D"]))
probe("data.validate", "variables='ND'", lambda: validate(pd.DataFrame(frame), "ND"))
for bad in BAD_SCALARS:
    probe("data.validate", f"data={bad!r:.30}", lambda b=bad: validate(b, ["N", "D"]))

# ------------------------------------------------------------------ plan CLI --json
p = tmp / "c.json"
fit.save(p)
from mixopt.plan.command import main as plan_main  # noqa: E402

for bad in (["--budget", "nan"], ["--budget", "-1"], ["--budget", "inf"], ["--budget", "0"]):
    probe("plan CLI", " ".join(bad), lambda b=bad: plan_main([str(p), *b, "--json"]))

# ------------------------------------------------------------------ issue 16 reproducers
if True:
    from mixopt import plan
    from mixopt.datasets import MEASURED_BOUNDS, load_ladder, simulate

    m = load_ladder("measured")
    fits = {}
    for dom in dict.fromkeys(m["domain"]):
        d = m[m["domain"] == dom][["N", "D", "D_spec", "loss"]]
        fits[dom] = mixopt.fit("additive", d, bounds=MEASURED_BOUNDS["additive"])
    def solved(p):
        return "FIXED" if p.success and np.isfinite(p.objective_value) else p

    probe("issue 1: plan.split worst + caps", "caps={'prose': 1e9}",
          lambda: solved(plan.split(fits, 1e21, objective="worst", caps={"prose": 1e9})))
    probe("issue 5: plan.split weights [1,0,0] + caps", "objective NaN?",
          lambda: solved(plan.split(fits, 1e21, weights=[1, 0, 0], caps={"python": 1e9})))
    chin = mixopt.fit("chinchilla", simulate("chinchilla", T, {
        "N": np.geomspace(1e7, 1e10, 12), "D": 20 * np.geomspace(1e7, 1e10, 12)}, noise=0))
    probe("issue 4: fit on D = 20 N (noise 0)", f"success={chin.success} A={chin.params['A']:.3g}",
          lambda: "FIXED" if not chin.success and chin.status == 3 else "reported success")
    N9 = np.repeat([2e7, 5e7, 1e8, 3e8, 1e9], 6)
    D9 = N9 * np.tile([2.0, 5, 10, 20, 40, 80], 5)
    base_d = simulate("chinchilla", T, {"N": N9, "D": D9}, noise=0.0, seed=0)
    for scale in (1e-3, 1e4):
        d = base_d.assign(loss=base_d["loss"] * scale)
        f = mixopt.fit("chinchilla", d)
        probe("issue 3: fit with losses x scale", f"x{scale:g}: alpha={f.params['alpha']:.3f} "
              f"(truth 0.34) success={f.success}",
              lambda f=f: "FIXED" if abs(f.params["alpha"] - 0.34) < 0.02 else "worse optimum")
    f0 = mixopt.fit("chinchilla", base_d)
    probe("issue 6: plan.budget_for_loss", "target 100",
          lambda: (lambda a: "FIXED" if abs(a.loss - 100.0) < 1e-6 * 100 else a)(
              plan.budget_for_loss(f0, 100.0)))
    probe("issue 10: plan.tokens_to_steps(nan)", "nan",
          lambda: plan.tokens_to_steps(float("nan"), 8, 128))
    probe("issue 10: law.predict out of bounds", "alpha=-5",
          lambda: mixopt.laws.get("chinchilla").predict(dict(T, alpha=-5.0), {"N": 1e9, "D": 1e10}))

# ------------------------------------------------------------------ laws, flops, curves, CLI
if True:
    from mixopt import curves
    from mixopt.plan import flops as F

    for name in mixopt.laws.names():
        for bad in BAD_SCALARS:
            probe("laws.get", f"{name}(domains={bad!r:.30})",
                  lambda n=name, b=bad: mixopt.laws.get(n, domains=b) if "mixture" in n
                  else mixopt.laws.get(n, bogus=b))
    for key in T:
        for bad in BAD_SCALARS:
            probe("law.predict", f"{key}={bad!r:.30}",
                  lambda k=key, b=bad: law.predict(dict(T, **{k: b}), {"N": 1e9, "D": 1e10}))
    for bad in BAD_SCALARS:
        probe("law.predict", f"N={bad!r:.30}", lambda b=bad: law.predict(T, {"N": b, "D": 1e10}))
        for fn in ("tokens_to_steps", "steps_to_tokens"):
            probe(f"plan.{fn}", f"tokens={bad!r:.30}", lambda f=fn, b=bad: getattr(F, f)(b, 8, 128))
            probe(f"plan.{fn}", f"batch_size={bad!r:.30}",
                  lambda f=fn, b=bad: getattr(F, f)(1e6, b, 128))
        probe("plan.as_flop_model", f"{bad!r:.30}", lambda b=bad: F.as_flop_model(b))
        probe("curves.tokens_to_reach", f"target={bad!r:.30}",
              lambda b=bad: curves.tokens_to_reach([1e6, 1e7, 1e8], [3.0, 2.5, 2.0], b))
        probe("curves.tokens_to_reach", f"tokens={bad!r:.30}",
              lambda b=bad: curves.tokens_to_reach(b, [3.0, 2.5, 2.0], 2.4))
    for bad in (["--budget"], ["--budget", "x"], [str(p), "--weights", "1", "--budget", "1e21"],
                [str(tmp / "nope.json"), "--budget", "1e21"], [str(tmp), "--budget", "1"]):
        probe("mixopt CLI plan", " ".join(bad),
              lambda b=bad: "FIXED" if mixopt.cli.main(["plan", *b]) == 1 else "accepted")


# ------------------------------------------------------------------ every law's get / predict
DOMS = ["web", "code", "math"]
LAW_OPTIONS = {"mixing": {"components": DOMS}, "mixing_chinchilla": {"domains": DOMS},
               "mixture_additive": {"domains": DOMS}, "mixture_joint": {"domains": DOMS}}
LAWS = {n: mixopt.laws.get(n, **LAW_OPTIONS.get(n, {})) for n in mixopt.laws.names()}
H3 = np.array([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [1.0, 0.0, 0.0]])
DATA3 = {"N": np.array([1e7, 1e8, 1e9]), "D": np.array([1e9, 1e10, 2e10]),
         "D_spec": np.array([0.0, 1e8, 1e9]), **{d: H3[:, j] for j, d in enumerate(DOMS)}}


def mid_params(lw):
    return {q.name: float(q.from_fit(q.grid[len(q.grid) // 2])) for q in lw.parameters}


def usable(pred):
    """A prediction returned normally must be finite and positive (else reported as nan)."""
    arr = np.asarray(pred, dtype=float)
    return arr if np.all(np.isfinite(arr) & (arr > 0)) else np.full(arr.shape, np.nan)


for name, lw in LAWS.items():
    good = mid_params(lw)
    X = {v: DATA3[v] for v in lw.variables}
    for key in lw.param_names:
        for bad in BAD_SCALARS:
            probe(f"laws.{name}.predict", f"{key}={bad!r:.30}",
                  lambda lw=lw, k=key, b=bad, g=good, X=X: usable(lw.predict({**g, k: b}, X)))
    for var in lw.variables:
        for bad in BAD_SCALARS + [[0.0, 0.0, 0.0], [1.0, 2.0]]:
            probe(f"laws.{name}.predict", f"data.{var}={bad!r:.30}",
                  lambda lw=lw, v=var, b=bad, g=good, X=X: usable(lw.predict(g, {**X, v: b})))
    for bad in BAD_SCALARS:
        probe(f"laws.{name}.predict", f"params={bad!r:.30}",
              lambda lw=lw, b=bad, X=X: usable(lw.predict(b, X)))
        probe(f"laws.{name}.predict", f"bounds={bad!r:.30}",
              lambda lw=lw, b=bad, g=good, X=X: usable(lw.predict(g, X, bounds=b)))
    for opt in ("domains", "components", "max_exponent"):
        for bad in BAD_SCALARS:
            probe("laws.get", f"{name}({opt}={bad!r:.30})",
                  lambda n=name, o=opt, b=bad: mixopt.laws.get(n, **{**LAW_OPTIONS.get(n, {}),
                                                                    o: b}))

# ------------------------------------------------------------------ planners
from mixopt import plan  # noqa: E402

CHIN = mixopt.fitting.FitResult(
    law=law, params=dict(T), fixed={}, objective=0.0, status=0, message="", n_starts=1, nit=1,
    nfev=1, data=pd.DataFrame({"N": N, "D": D, "loss": law.predict(T, {"N": N, "D": D})}),
    weights=np.ones(9), delta=1e-3, bounds=law.bounds)
TR = mixopt.laws.get("transfer")
SPEC = {"code": (TR, dict(E=1.6, A=400.0, B=500.0, alpha=0.34, beta=0.28, K=1e3, rho=0.75)),
        "math": (TR, dict(E=1.4, A=400.0, B=500.0, alpha=0.34, beta=0.28, K=50.0, rho=0.75))}
replace_each("plan.compute_optimal", lambda **kw: plan.compute_optimal(**kw),
             {"fit": CHIN, "budget": 1e21, "flops": None, "max_D": None, "min_N": 1e3,
              "max_N": None, "solver": "auto"})
replace_each("plan.best_loss_at", lambda **kw: plan.best_loss_at(**kw),
             {"fit": CHIN, "budget": 1e21, "N": 1e9})
replace_each("plan.budget_for_loss", lambda **kw: plan.budget_for_loss(**kw),
             {"fit": CHIN, "target_loss": 2.3, "min_N": 1e3})
replace_each("plan.split", lambda **kw: plan.split(**kw),
             {"fits": SPEC, "budget": 1e21, "weights": None, "caps": None, "N": None,
              "max_D": None, "objective": "weighted", "min_N": 1e3, "gp": False,
              "n_starts": 3, "baselines": False})
replace_each("plan.frontier", lambda **kw: plan.frontier(**kw),
             {"fits": SPEC, "budgets": [1e19, 1e21], "weights": None, "caps": None,
              "objective": "weighted"})
for bad in BAD_SCALARS:
    probe("plan.split", f"fits[code]={bad!r:.30}",
          lambda b=bad: plan.split({**SPEC, "code": b}, 1e21, baselines=False))
    probe("plan.split", f"caps[math]={bad!r:.30}",
          lambda b=bad: plan.split(SPEC, 1e21, caps={"math": b}, baselines=False))
    probe("plan.split", f"weights[0]={bad!r:.30}",
          lambda b=bad: plan.split(SPEC, 1e21, weights=[b, 0.5], baselines=False))

MIXLAW = LAWS["mixing_chinchilla"]
MP1 = {"E": 1.8, "alpha": 0.34, "beta": 0.28, "ta_web": 6.0, "ta_code": 6.2, "ta_math": 6.1,
       "tb_web": 5.8, "tb_code": 6.6, "tb_math": 6.3}
MP2 = {**MP1, "E": 1.5, "ta_web": 6.3, "tb_code": 5.6}
MFITS = {"web_val": (MIXLAW, MP1), "code_val": (MIXLAW, MP2)}
replace_each("plan.mixture", lambda **kw: plan.mixture(**kw),
             {"fits": MFITS, "N": 1e9, "D": 2e10, "weights": None, "caps": None,
              "floors": None, "tokens": None, "objective": "weighted"})
replace_each("plan.mixture(budget)", lambda **kw: plan.mixture(**kw),
             {"fits": MFITS, "budget": 1e20, "N_range": (1e7, 1e11), "flops": None})
for key in ("caps", "floors", "tokens"):
    for bad in BAD_SCALARS:
        probe("plan.mixture", f"{key}[web]={bad!r:.30}",
              lambda k=key, b=bad: plan.mixture(MFITS, N=1e9, D=2e10, **{k: {"web": b}}))
for bad in BAD_SCALARS + [[1e19, float("nan")], [1e19, -1.0]]:
    probe("plan.mixture_path", f"budgets={bad!r:.30}",
          lambda b=bad: plan.mixture_path(MFITS, b, N_range=(1e7, 1e11)))
SFITS = {"web_val": (TR, dict(E=1.8, A=400.0, B=400.0, alpha=0.34, beta=0.28, K=1e3, rho=0.7)),
         "code_val": (TR, dict(E=1.5, A=400.0, B=900.0, alpha=0.34, beta=0.28, K=50.0,
                               rho=0.8))}
replace_each("plan.mixture_split", lambda **kw: plan.mixture_split(**kw),
             {"mixture_fits": MFITS, "split_fits": SFITS, "budget": 1e21, "weights": None,
              "objective": "weighted", "caps": None, "floors": None, "spec_caps": None,
              "N_range": (1e7, 1e11)}, limit=60)

# ------------------------------------------------------------------ saved plans
SAVED = {"Allocation": plan.compute_optimal(CHIN, [1e18, 1e22]),
         "SplitPlan": plan.split({k: (lw, pp) for k, (lw, pp) in SPEC.items()}, 1e21),
         "MixtureAllocation": plan.mixture(MFITS, N=1e9, D=2e10)}
for kind, obj in SAVED.items():
    d0 = json.loads(json.dumps(obj.to_dict()))
    for path in list(walk_paths(d0)):
        for bad in (None, "x", -1.0, True, "nan", [], {}, 1e300):
            d = copy.deepcopy(d0)
            ref = d
            for k in path[:-1]:
                ref = ref[k]
            ref[path[-1]] = bad
            probe(f"plan.load({kind})", f"{'/'.join(map(str, path))}={bad!r}",
                  lambda d=d: plan.load(d))
for text in ("{", "[]", "null", '{"kind": "SplitPlan"}', "\x00"):
    (tmp / "plan.json").write_text(text)
    probe("plan.load", f"text {text[:12]!r}", lambda: plan.load(tmp / "plan.json"))

# ------------------------------------------------------------------ mixopt.mixture
import mixopt.mixture as mm  # noqa: E402

RNG = np.random.default_rng(0)
RAT = pd.DataFrame(RNG.dirichlet(np.ones(3), size=14), columns=DOMS)
MET = pd.DataFrame({"web_val": 2.0 + np.exp(-(RAT.to_numpy() @ [0.8, 1.5, 0.4])),
                    "code_val": 1.5 + np.exp(-(RAT.to_numpy() @ [0.4, 1.5, 0.8]))})
MODEL = mm.fit(RAT, MET, target="web_val", model="loglinear")
PRIOR = {"web": 5e9, "code": 2e9, "math": 1e9}
replace_each("mixture.design", lambda **kw: mm.design(**kw),
             {"prior": PRIOR, "n_runs": 6, "seed": 0, "temperature": 0.5, "min_weight": 2e-4,
              "round_to": 2e-4, "max_ratio": 15.0, "oversample": 20, "min_distance": 0.0})
replace_each("mixture.caps", lambda **kw: mm.caps(**kw),
             {"tokens": PRIOR, "target_tokens": 25e9, "max_epochs": 4.0})
replace_each("mixture.write_configs", lambda **kw: mm.write_configs(**kw),
             {"swarm": mm.design(PRIOR, 3, seed=0), "out_dir": tmp / "cfg", "template": None})
replace_each("mixture.fit", lambda **kw: mm.fit(**kw),
             {"ratios": RAT, "metrics": MET, "target": "web_val", "model": "linear", "seed": 0})


def cell(frame, i, j, value):
    vals = frame.to_numpy(dtype=object).copy()
    vals[i, j] = value
    return pd.DataFrame(vals, index=frame.index, columns=frame.columns)


for bad in BAD_SCALARS:
    probe("mixture.fit", f"ratios[0, 0]={bad!r:.30}",
          lambda b=bad: mm.fit(cell(RAT, 0, 0, b), MET, target="web_val", model="linear"))
    probe("mixture.fit", f"metrics[0, 0]={bad!r:.30}",
          lambda b=bad: mm.fit(RAT, cell(MET, 0, 0, b), target="web_val", model="linear"))
    probe("mixture.MixtureModel.predict", f"ratios={bad!r:.30}", lambda b=bad: MODEL.predict(b))
replace_each("mixture.optimize", lambda **kw: mm.optimize(**kw),
             {"model": MODEL, "caps": None, "floors": None, "prior": None, "kl": 0.0,
              "seed": 0, "method": "auto", "n_samples": 2000, "top_k": 16, "rounds": 1,
              "n_boot": 0, "level": 0.95, "max_iter": 200, "tol": 1e-8})
replace_each("mixture.cross_validate", lambda **kw: mm.cross_validate(**kw),
             {"ratios": RAT, "metrics": MET, "target": "web_val", "models": ["linear"],
              "folds": 2, "seed": 0, "progress": False})
replace_each("mixture.rank_transfer", lambda **kw: mm.rank_transfer(**kw),
             {"small": MET, "large": MET * 0.9, "target": "web_val"})
MODEL.save(tmp / "model.json")
md0 = json.loads((tmp / "model.json").read_text())
for path in list(walk_paths(md0)):
    for bad in (None, "x", -1.0, True, 1e300, [], {}):
        d = copy.deepcopy(md0)
        ref = d
        for k in path[:-1]:
            ref = ref[k]
        ref[path[-1]] = bad
        (tmp / "m.json").write_text(json.dumps(d))
        probe("mixture.load", f"{'/'.join(map(str, path))}={bad!r}",
              lambda: usable(mm.load(tmp / "m.json").predict(RAT)))
rd = tmp / "regmix"
rd.mkdir()
for mix_text, loss_text in (("run,a,b\n0,0.5,0.5\n", "run,a\n0,x\n"), ("", ""),
                            ('"', "run\n"), ("run,a,b\n0,True,0.5\n", "run,a\n0,2.0\n"),
                            ("run,a,b\n0,-1,2\n", "run,a\n0,2.0\n"),
                            ("run,a,b\n0,0.5,0.5\n", "run,a\n0,-2.0\n")):
    (rd / "train_mixture_1m.csv").write_text(mix_text)
    (rd / "train_pile_loss_1m.csv").write_text(loss_text)
    probe("mixture.read_regmix", f"files {mix_text[:14]!r} {loss_text[:10]!r}",
          lambda: mm.read_regmix(rd))
for key in ("split", "scale", "renormalise"):
    for bad in BAD_SCALARS:
        probe("mixture.read_regmix", f"{key}={bad!r:.30}",
              lambda k=key, b=bad: mm.read_regmix(rd, **{k: b}))

# ------------------------------------------------------------------ report
total = Counter()
cols = ("mixopt", "legal", "other", "silent", "nan", "hang")
print(f"{'entry point':<44}{'tried':>7}" + "".join(f"{c:>8}" for c in cols))
for entry, c in results.items():
    total.update(c)
    print(f"{entry:<44}{sum(c.values()):>7}" + "".join(f"{c[k]:>8}" for k in cols))
print(f"{'TOTAL':<44}{sum(total.values()):>7}" + "".join(f"{total[k]:>8}" for k in cols))
if "-v" in sys.argv:
    print("\n".join(details))
