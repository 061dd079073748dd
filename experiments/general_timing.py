"""Speed of the shipped (cross-scene) LRR-Net+ against global RX (issue #8 targets).

  python experiments/general_timing.py --out results/general_timing.json

1. In process, per real 100 x 100 scene: the first call (compilation + run) and
   the median of ``--repeats`` warm calls of ``score_cube`` (the whole detector:
   normalisation, band noise, dictionary, stages, head).
2. Whole ``lrrjax detect FILE --out ...`` commands (fresh processes: import, load,
   compile, score, figures) for the default method and ``--method grx`` on the
   same file, alternated ``--repeats`` times; wall seconds and peak RSS. Twice:
   with the command line's persistent compilation cache off (every run
   compiles: a first run on a new machine), then with the cache in a fresh
   folder that one untimed run of each command has filled (repeated runs).
   Before the first timed run one untimed run of each command (cache off)
   writes the Python bytecode of every module the commands import and reads
   their files into the page cache, so that no timed run pays that once
   (``pip install`` writes the bytecode; an editable install or a fresh git
   worktree leaves it to the first import). The ratio of the medians and the
   median of the five per-pair ratios (each command's run against the other's
   in the same repeat) are both recorded.
3. The same two commands on a 512 x 512 x 200 synthetic cube (cache off)
   (``make_scene(512, 512, 200, n_targets=60, seed=1)`` saved as .npz).
The machine is shared and noisy: compare the ratios measured in one run.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

from lrrjax import io, provenance, synthetic
from lrrjax.lrr import cross, methods


def _cli_rss(args, out, cache="off") -> tuple[float, float]:
  """``lrrjax detect ARGS --out OUT`` in a wrapper process that reports its
  wall seconds and peak RSS (GiB); ``cache``: ``LRRJAX_COMPILE_CACHE``."""
  code = ("import resource, subprocess, sys, time; t=time.perf_counter(); "
          "r=subprocess.run(sys.argv[1:], capture_output=True); "
          "assert r.returncode == 0, r.stderr[-2000:]; "
          "print(time.perf_counter()-t, "
          "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20)")
  cmd = [sys.executable, "-c", code, sys.executable, "-m", "lrrjax.cli", "detect", *args,
         "--out", str(out)]
  env = {**os.environ, "LRRJAX_COMPILE_CACHE": str(cache)}
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
  wall, rss = proc.stdout.split()
  return float(wall), float(rss)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--out", required=True)
  p.add_argument("--scenes", default="abu-airport-1,abu-urban-1,sandiego")
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--big", type=int, default=512, help="side of the synthetic cube (0: skip)")
  a = p.parse_args(argv)
  model, cfg = methods.load_general()
  rec = {"in_process": [], "cli": [], "big": None}
  for path in io.list_scenes(None, a.scenes):
    scene = io.load_scene(path)
    t0 = time.perf_counter()
    cross.score_cube(model, cfg, scene.cube)
    first = time.perf_counter() - t0
    warm = []
    for _ in range(a.repeats):
      t0 = time.perf_counter()
      cross.score_cube(model, cfg, scene.cube)
      warm.append(time.perf_counter() - t0)
    rec["in_process"].append({"scene": scene.name, "shape": list(scene.cube.shape),
                              "first_seconds": first, "warm_seconds": warm,
                              "warm_median": float(np.median(warm))})
    print(f"{scene.name}: first {first:.2f}s, warm median {np.median(warm):.3f}s", flush=True)
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    path = io.list_scenes(None, a.scenes)[0]
    rec["cli"] = {"file": path.name}
    for mode, cache in (("cold", "off"), ("cached", tmp / "jax-cache")):
      runs = {"lrrnet-plus": [], "grx": []}
      for m in runs:  # bytecode and page cache (cold), or fills the cache; not timed
        _cli_rss([str(path), "--method", m], tmp / m, cache)
      for _ in range(a.repeats):
        for m in runs:
          runs[m].append(_cli_rss([str(path), "--method", m], tmp / m, cache))
      ratio = float(np.median([w for w, _ in runs["lrrnet-plus"]])
                    / np.median([w for w, _ in runs["grx"]]))
      # cache off: the keys of earlier runs of this script
      key = "" if mode == "cold" else "cached_"
      rec["cli"].update({f"{key}{m}": v for m, v in runs.items()})
      rec["cli"][f"{key}ratio_median_wall"] = ratio
      pairs = [x[0] / g[0] for x, g in zip(runs["lrrnet-plus"], runs["grx"])]
      rec["cli"][f"{key}pair_ratios"] = pairs
      rec["cli"][f"{key}ratio_median_of_pairs"] = float(np.median(pairs))
      print(f"lrrjax detect {path.name} ({mode}): ratio lrrnet-plus/grx {ratio:.2f} "
            f"(pairs {', '.join(f'{r:.2f}' for r in pairs)})", flush=True)
    if a.big:
      sc = synthetic.make_scene(a.big, a.big, 200, n_targets=60, seed=1)
      big = tmp / "big.npz"
      np.savez(big, data=sc.cube, map=sc.gt.astype(np.uint8))
      del sc
      rec["big"] = {"shape": [a.big, a.big, 200],
                    **{m: _cli_rss([str(big), "--method", m], tmp / f"big-{m}")
                       for m in ("lrrnet-plus", "grx")}}
      print(f"{a.big}x{a.big}x200: {rec['big']}", flush=True)
  rec["provenance"] = provenance.record(config=cfg, seed=int(cfg.seed))
  provenance.write_json(a.out, rec)
  return 0


if __name__ == "__main__":
  sys.exit(main())
