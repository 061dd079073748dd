"""Speed of the shipped (cross-scene) LRR-Net+ against global RX (issue #8 targets).

  python experiments/general_timing.py --out results/general_timing.json

1. In process, per real 100 x 100 scene: the first call (compilation + run) and
   the median of ``--repeats`` warm calls of ``score_cube`` (the whole detector:
   normalisation, band noise, dictionary, stages, head).
2. Whole ``lrrjax detect FILE --out ...`` commands (fresh processes: import, load,
   compile, score, figures) for the default method and ``--method grx`` on the
   same file, alternated ``--repeats`` times; wall seconds and peak RSS.
3. The same two commands on a 512 x 512 x 200 synthetic cube
   (``make_scene(512, 512, 200, n_targets=60, seed=1)`` saved as .npz).
The machine is shared and noisy: compare the ratios measured in one run.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

from lrrjax import io, provenance, synthetic
from lrrjax.lrr import cross, methods


def _cli_rss(args, out) -> tuple[float, float]:
  """Like :func:`_cli` in a wrapper process so that its own peak RSS is reported."""
  code = ("import resource, subprocess, sys, time; t=time.perf_counter(); "
          "r=subprocess.run(sys.argv[1:], capture_output=True); "
          "assert r.returncode == 0, r.stderr[-2000:]; "
          "print(time.perf_counter()-t, "
          "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20)")
  cmd = [sys.executable, "-c", code, sys.executable, "-m", "lrrjax.cli", "detect", *args,
         "--out", str(out)]
  proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
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
    runs = {"lrrnet-plus": [], "grx": []}
    for _ in range(a.repeats):
      for m in runs:
        runs[m].append(_cli_rss([str(path), "--method", m], tmp / m))
    rec["cli"] = {"file": path.name, **{m: v for m, v in runs.items()},
                  "ratio_median_wall": float(np.median([w for w, _ in runs["lrrnet-plus"]])
                                             / np.median([w for w, _ in runs["grx"]]))}
    print(f"lrrjax detect {path.name}: ratio lrrnet-plus/grx {rec['cli']['ratio_median_wall']:.2f}",
          flush=True)
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
