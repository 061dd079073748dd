"""Detection at low false-alarm rates on the shared scenes (a diagnostic).

  python experiments/low_far.py --out results/low_far/head.json \
      [--methods lrrnet-plus,aed,grx,lrx] [--data DIR]

AUC(D,F) integrates the whole ROC; an operator sets a threshold at a small
false-alarm rate. For each scene and method (default parameters, whole-scene
path) this reports pixel-level Pd at FAR 1e-3 and 1e-2 (the fraction of
target pixels above the background's (1 - FAR) quantile,
:func:`lrrjax.suite.stratified.threshold`) and the partial AUC over
FAR in [0, 1e-2] divided by 1e-2 (1 = perfect, FAR-uniform random = 0.005).
Ground truth only scores. To compare parameter versions run this file with
``PYTHONPATH`` at another revision's package (the record names the package's
revision and this file's).
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys

import numpy as np

from lrrjax import detectors, io, metrics, provenance
from lrrjax.suite import stratified

FARS = (1e-3, 1e-2)
PARTIAL = 1e-2


def scene_record(scores_hw: np.ndarray, gt_hw: np.ndarray) -> dict:
  s = np.asarray(scores_hw, np.float64).ravel()
  g = np.asarray(gt_hw, bool).ravel()
  rec = {"auc_df": metrics.auc_df(s, g),
         "partial_auc_1e-2": metrics.partial_auc_df(s, g, PARTIAL)}
  for far in FARS:
    thr = stratified.threshold(s[~g], far)
    rec[f"pd_at_far_{far:g}"] = float(np.mean(s[g] > thr))
  return rec


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
  p.add_argument("--out", required=True)
  p.add_argument("--methods", default="lrrnet-plus,aed,grx,lrx")
  p.add_argument("--data", default=None)
  a = p.parse_args(argv)
  methods = a.methods.split(",")
  recs = []
  for path in io.list_scenes(a.data, None):
    scene = io.load_scene(path)
    for m in methods:
      z = np.asarray(detectors.run_method(m, scene))
      recs.append({"scene": scene.name, "method": m, **scene_record(z, scene.gt)})
      print(f"{scene.name} {m}: " + ", ".join(f"{k} {v:.4f}" for k, v in recs[-1].items()
                                              if isinstance(v, float)), flush=True)
  keys = ["auc_df", "partial_auc_1e-2"] + [f"pd_at_far_{f:g}" for f in FARS]
  mean = {m: {k: float(np.mean([r[k] for r in recs if r["method"] == m])) for k in keys}
          for m in methods}
  here = pathlib.Path(__file__).resolve().parent
  rev = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                       text=True, check=False).stdout.strip()
  provenance.write_json(a.out, {"records": recs, "mean": mean, "script_revision": rev,
                                "provenance": provenance.record()})
  for m in methods:
    print(f"mean {m}: " + ", ".join(f"{k} {v:.4f}" for k, v in mean[m].items()))
  return 0


if __name__ == "__main__":
  sys.exit(main())
