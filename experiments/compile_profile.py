"""What a cold ``lrrjax detect`` of the shipped LRR-Net+ spends before and
while it scores one 100 x 100 scene (issue #8's cold wall-time ratio).

  python experiments/compile_profile.py --out results/compile_profile.json

Every run is a fresh process that first imports what ``lrrjax detect`` imports
(the CLI, every detector, the plots), so the Python heap, and with it the
garbage collector's work, is the command's. It then times, for one scene:
loading the parameter file; tracing + lowering and XLA compilation of the two
programs the command compiles (``scene._scene_base``, the normalisation and band
noise of ``scene.prepare``, and the network, ``general._scores``), each with the
process's CPU seconds beside the wall
seconds (XLA:CPU compiles on several threads) and the number of kernels it
emitted (fusion computations in the compiled HLO); the host dictionary
selection's seconds in the first call (``lrrjax.lrr.atoms``); the first call and
the median of three warm calls; the seconds the garbage collector ran from loading
to the first scores (``gc.callbacks``). ``--variants`` adds runs with XLA
compiler options on both programs (``jax.jit(..., compiler_options=...)``),
with the largest difference of their scores from the default's, relative to
the largest score. Variants alternate for ``--rounds`` rounds; the machine is
noisy, so compare medians of one run. Nothing here changes the package.

  python experiments/compile_profile.py --parts --out results/compile_parts.json

``--parts`` instead compiles pieces of the programs on their own, for the
same scene, each in every one of ``--rounds`` fresh processes (after one
throw-away compilation that starts XLA): the scene side (the whole traced
``scene_context`` as the exported detector compiles it, the jitted part of
``prepare``, the traced twin of the dictionary selection, the band noise) and
the network (the whole, the ten stages, the score head's features, the area
top-hats of one map), with tracing + lowering and compilation seconds apart.
A piece's seconds are not additive (XLA fuses across pieces), they say where
the kernels are. (Until the dictionary selection moved to the host, the
pieces were those of ``results/compile_parts.json``: its k-means, seeding and
an inverse-CDF seeding candidate; the script of its revision has them.)
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
      ("scene_base", jax.jit(scene_lib._scene_base, static_argnames=("gamma0",),  # pylint: disable=protected-access
                             compiler_options=options or None),
       lambda: ((jax.ShapeDtypeStruct(cube.shape, jnp.float32),), {"gamma0": kw["gamma0"]})),
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

  host_s = []

  def score():
    x_bn, noise_b, xw_bn = progs["scene_base"](jnp.asarray(cube))
    t = time.perf_counter()
    atoms = scene_lib.dictionary_atoms(xw_bn, kw["seed"], kw["n_clusters"], kw["per_cluster"],
                                       kw["n_sample"])
    host_s.append(time.perf_counter() - t)
    ctx = scene_lib.SceneContext(x_bn, noise_b, jnp.asarray(atoms))
    return np.asarray(progs["network"](state, ctx))

  t0 = time.perf_counter()
  s = score()
  rec["first_call_s"] = time.perf_counter() - t0
  rec["host_dictionary_s"] = host_s[0]
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


def parts_run(scene_path: str) -> dict:
  """``--parts``: one fresh process's seconds per piece (module docstring)."""
  import time  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from lrrjax import io  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import area, atoms, cross, general, methods, score_head  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import scene as sc  # pylint: disable=import-outside-toplevel
  cube = np.asarray(io.load_scene(scene_path).cube, np.float32)
  h, w, _ = cube.shape
  model, cfg = methods.load_general()
  kw = cross.context_kwargs(cfg)
  graphdef, state = nnx.split(model)
  jax.jit(lambda v: v + 1).lower(1.0).compile()  # starts XLA; not timed
  ctx = sc.prepare(cube, **kw)
  k, seed = kw["n_clusters"], jnp.uint32(kw["seed"])

  def stages(st, c):
    return nnx.merge(graphdef, st).run_stages(c)

  x_bn, out = jax.jit(stages)(state, ctx)
  e_nb = (x_bn - out.d_bk @ out.l_kn).T
  pieces = {
      "scene_context": (lambda c: sc.scene_context(c, **kw),
                        (jax.ShapeDtypeStruct(cube.shape, jnp.float32),)),
      "scene: prepare's jitted part": (lambda c: sc._scene_base(c, kw["gamma0"]),  # pylint: disable=protected-access
                                       (jax.ShapeDtypeStruct(cube.shape, jnp.float32),)),
      "scene: dictionary selection, traced twin": (
          lambda x: atoms.dictionary_atoms_traced(x, seed, k, kw["per_cluster"], kw["n_sample"]),
          (ctx.x_bn,)),
      "scene: band noise": (lambda x: sc._band_noise(x, h, w), (ctx.x_bn,)),  # pylint: disable=protected-access
      "network": (lambda st, c: general._scores(graphdef, st, c, h, w), (state, ctx)),  # pylint: disable=protected-access
      "network: ten stages": (lambda st, c: stages(st, c), (state, ctx)),  # not the jit above
      "network: score-head features": (
          lambda s, e, nb, x: score_head.features(s, e, nb, h, w, x),
          (out.s_bn.T, e_nb, ctx.noise_b, x_bn.T)),
      "network: area top-hats of one map": (
          lambda f: area.area_tophats(f, score_head.AREAS, score_head.AREA_LEVELS),
          (jax.ShapeDtypeStruct((h, w), jnp.float32),)),
  }
  rec = {}
  for name, (fn, args) in pieces.items():
    t0 = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    t1 = time.perf_counter()
    lowered.compile()
    rec[name] = {"lower_s": t1 - t0, "compile_s": time.perf_counter() - t1}
  return rec


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--out", required=True)
  p.add_argument("--scene", default="abu-airport-1")
  p.add_argument("--data", default=None, help="scene folder (default LRRJAX_DATA_DIR)")
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--variants", default=",".join(VARIANTS),
                 help=f"comma-separated, from {sorted(VARIANTS)} (default first)")
  p.add_argument("--parts", action="store_true",
                 help="compile pieces of the two programs on their own (module docstring)")
  p.add_argument("--one", default=None, help=argparse.SUPPRESS)      # child: a variant name
  p.add_argument("--ref", default=None, help=argparse.SUPPRESS)
  p.add_argument("--save", default=None, help=argparse.SUPPRESS)
  a = p.parse_args(argv)
  from lrrjax import io, provenance  # pylint: disable=import-outside-toplevel
  path = str(io.list_scenes(a.data, a.scene)[0])
  if a.one == "parts":
    print(json.dumps(parts_run(path)))
    return 0
  if a.one is not None:
    print(json.dumps(one_run(path, VARIANTS[a.one], a.ref, a.save)))
    return 0
  if a.parts:
    return _parts_main(a, path)
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

  summary = {v: {"scene_base_compile_s": med(v, "scene_base", "compile_s"),
                 "network_compile_s": med(v, "network", "compile_s"),
                 "lower_s": (med(v, "scene_base", "lower_s") or 0)
                 + (med(v, "network", "lower_s") or 0),
                 "kernels": [med(v, "scene_base", "kernels"), med(v, "network", "kernels")],
                 "host_dictionary_s": med(v, "host_dictionary_s"),
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


def _parts_main(a, path) -> int:
  """``--parts``: ``--rounds`` fresh processes, the median seconds per piece."""
  from lrrjax import provenance  # pylint: disable=import-outside-toplevel
  runs = []
  for _ in range(a.rounds):
    cmd = [sys.executable, __file__, "--out", a.out, "--scene", a.scene, "--one", "parts"]
    cmd += ["--data", a.data] if a.data else []
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
      raise SystemExit(f"--parts child failed: {proc.stderr.strip().splitlines()[-1:]}")
    runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
  medians = {name: {key: float(np.median([r[name][key] for r in runs]))
                    for key in ("lower_s", "compile_s")} for name in runs[0]}
  for name, med in medians.items():
    print(f"{name:36s} lower {med['lower_s']:6.3f} s  compile {med['compile_s']:6.3f} s")
  provenance.write_json(a.out, {"scene": a.scene, "parts": True, "runs": runs,
                                "medians": medians, "provenance": provenance.record()})
  return 0


if __name__ == "__main__":
  sys.exit(main())
