"""What a cold ``lrrjax detect`` of the shipped LRR-Net+ spends before and
while it scores one 100 x 100 scene (issue #8's cold wall-time ratio).

  python experiments/compile_profile.py --out results/compile_profile.json

Every run is a fresh process that first imports what ``lrrjax detect`` imports
(the CLI, every detector, the plots), so the Python heap, and with it the
garbage collector's work, is the command's. It then times, for one scene:
loading the parameter file; tracing + lowering and XLA compilation of the two
programs the command compiles (``scene.scene_context`` and the network,
``general._scores``), each with the process's CPU seconds beside the wall
seconds (XLA:CPU compiles on several threads) and the number of kernels it
emitted (fusion computations in the compiled HLO); the first call and the
median of three warm calls; the seconds the garbage collector ran from loading
to the first scores (``gc.callbacks``). ``--variants`` adds runs with XLA
compiler options on both programs (``jax.jit(..., compiler_options=...)``),
with the largest difference of their scores from the default's, relative to
the largest score. Variants alternate for ``--rounds`` rounds; the machine is
noisy, so compare medians of one run. Nothing here changes the package.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

VARIANTS = {
    "default": {},
    "no-fusion-emitters": {"xla_cpu_use_fusion_emitters": False},
    "opt-level-1": {"xla_backend_optimization_level": 1},
    "no-expensive-llvm-passes": {"xla_llvm_disable_expensive_passes": True},
}


def one_run(scene_path: str, options: dict, ref: str | None, save: str | None) -> dict:
  """One cold run in this (fresh) process; see the module docstring."""
  import gc  # pylint: disable=import-outside-toplevel
  import re  # pylint: disable=import-outside-toplevel
  import resource  # pylint: disable=import-outside-toplevel
  import time  # pylint: disable=import-outside-toplevel

  gc_seconds = [0.0]
  started = [0.0]

  def on_gc(phase, _info):
    if phase == "start":
      started[0] = time.perf_counter()
    else:
      gc_seconds[0] += time.perf_counter() - started[0]

  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from flax import nnx  # pylint: disable=import-outside-toplevel

  import importlib  # pylint: disable=import-outside-toplevel
  for mod in ("lrrjax.cli", "lrrjax.plots"):   # what lrrjax detect imports
    importlib.import_module(mod)
  from lrrjax import detectors, io  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import cross, general, methods  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import scene as scene_lib  # pylint: disable=import-outside-toplevel
  detectors.available_methods()
  cube = np.asarray(io.load_scene(scene_path).cube, np.float32)
  h, w, _ = cube.shape

  def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

  def kernels(compiled):
    return len(re.findall(r"^%?\S*fus\S* .*\{$", compiled.as_text(), re.M))

  gc.callbacks.append(on_gc)
  rec = {"options": options}
  t0 = time.perf_counter()
  model, cfg = methods.load_general()
  rec["load_parameters_s"] = time.perf_counter() - t0
  kw = cross.context_kwargs(cfg)
  graphdef, state = nnx.split(model)
  progs = {}
  for name, fn, args in (
      ("scene_context", jax.jit(scene_lib.scene_context, static_argnames=tuple(kw),
                                compiler_options=options or None),
       lambda: ((jax.ShapeDtypeStruct(cube.shape, jnp.float32),), kw)),
      ("network", jax.jit(general._scores, static_argnums=(0, 3, 4),  # pylint: disable=protected-access
                          compiler_options=options or None),
       lambda: ((graphdef, state, jax.eval_shape(
           lambda c: scene_lib.scene_context(c, **kw),
           jax.ShapeDtypeStruct(cube.shape, jnp.float32)), h, w), {}))):
    a, k = args()
    t0 = time.perf_counter()
    lowered = fn.lower(*a, **k)
    t1, c1 = time.perf_counter(), cpu()
    compiled = lowered.compile()
    t2, c2 = time.perf_counter(), cpu()
    progs[name] = compiled
    rec[name] = {"lower_s": t1 - t0, "compile_s": t2 - t1, "compile_cpu_s": c2 - c1,
                 "kernels": kernels(compiled)}

  def score():
    ctx = progs["scene_context"](jnp.asarray(cube))
    return np.asarray(progs["network"](state, ctx))

  t0 = time.perf_counter()
  s = score()
  rec["first_call_s"] = time.perf_counter() - t0
  rec["gc_s_load_to_first_scores"] = gc_seconds[0]
  gc.callbacks.remove(on_gc)
  warm = []
  for _ in range(3):
    t0 = time.perf_counter()
    score()
    warm.append(time.perf_counter() - t0)
  rec["warm_median_s"] = float(np.median(warm))
  if save:
    np.save(save, s)
  if ref:
    r = np.load(ref)
    rec["max_rel_diff_vs_default"] = float(np.max(np.abs(s - r)) / np.max(np.abs(r)))
  return rec


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--out", required=True)
  p.add_argument("--scene", default="abu-airport-1")
  p.add_argument("--data", default=None, help="scene folder (default LRRJAX_DATA_DIR)")
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--variants", default=",".join(VARIANTS),
                 help=f"comma-separated, from {sorted(VARIANTS)} (default first)")
  p.add_argument("--one", default=None, help=argparse.SUPPRESS)      # child: a variant name
  p.add_argument("--ref", default=None, help=argparse.SUPPRESS)
  p.add_argument("--save", default=None, help=argparse.SUPPRESS)
  a = p.parse_args(argv)
  from lrrjax import io, provenance  # pylint: disable=import-outside-toplevel
  path = str(io.list_scenes(a.data, a.scene)[0])
  if a.one is not None:
    print(json.dumps(one_run(path, VARIANTS[a.one], a.ref, a.save)))
    return 0
  names = [v for v in a.variants.split(",") if v]
  if names[0] != "default" or any(v not in VARIANTS for v in names):
    raise SystemExit(f"--variants: names from {sorted(VARIANTS)}, 'default' first")
  runs = {v: [] for v in names}
  with tempfile.TemporaryDirectory() as tmp:
    ref = str(pathlib.Path(tmp) / "default.npy")
    for r in range(a.rounds):
      for v in names:
        cmd = [sys.executable, __file__, "--out", a.out, "--scene", a.scene, "--one", v]
        cmd += ["--data", a.data] if a.data else []
        cmd += ["--save", ref] if (v == "default" and r == 0) else ["--ref", ref]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
          runs[v].append({"error": proc.stderr.strip().splitlines()[-1:]})
        else:
          runs[v].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(v, json.dumps(runs[v][-1])[:300], flush=True)

  def med(v, *keys):
    vals = []
    for rec in runs[v]:
      for k in keys:
        rec = rec.get(k, {}) if isinstance(rec, dict) else {}
      if isinstance(rec, (int, float)):
        vals.append(rec)
    return float(np.median(vals)) if vals else None

  summary = {v: {"scene_context_compile_s": med(v, "scene_context", "compile_s"),
                 "network_compile_s": med(v, "network", "compile_s"),
                 "lower_s": (med(v, "scene_context", "lower_s") or 0)
                 + (med(v, "network", "lower_s") or 0),
                 "kernels": [med(v, "scene_context", "kernels"), med(v, "network", "kernels")],
                 "warm_median_s": med(v, "warm_median_s"),
                 "load_parameters_s": med(v, "load_parameters_s"),
                 "gc_s": med(v, "gc_s_load_to_first_scores"),
                 "max_rel_diff_vs_default": med(v, "max_rel_diff_vs_default")}
             for v in names}
  for v, s in summary.items():
    print(v, s)
  provenance.write_json(a.out, {"scene": a.scene, "variants": {v: VARIANTS[v] for v in names},
                                "runs": runs, "medians": summary,
                                "provenance": provenance.record()})
  return 0


if __name__ == "__main__":
  sys.exit(main())
