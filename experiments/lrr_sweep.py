"""How far the LRR model itself can go: lambda, beta and scoring sweeps.

LRR-Net+ with the ``distill`` loss learns to reach, in T stages, the solution of
the model-based solver (the teacher: 100 ADMM iterations, robust atom update).
Its AUC is therefore bounded by what that model gives. This script measures the
model-based solution on every scene, for

* model variants: ``model.lam`` in {0.03, 0.1, 0.3, 1} and the LRASR-style
  ``beta ||L||_1`` variant with ``model.beta`` in {0.01, 0.03, 0.1}
  (everything else at the defaults);
* scoring variants on the default solution (insight only, none is a detector
  of the package): the Mahalanobis (RX) distance of the residual ``X - D L``,
  the residual norm after whitening by a shift-difference noise covariance,
  and a 3 x 3 mean filter of the default map;

where the strongest background scores of the default lie (``false_alarms``:
how many background pixels exceed the background's 99th percentile, the
largest connected block of them, how many anomaly pixels reach that level),
and, per scene, the best model variant, chosen *with the ground truth*: an
oracle upper bound of what per-scene tuning of lambda / beta could give, which
is labelled as such and used for nothing else.

  python experiments/lrr_sweep.py --out results/sweep [--scenes s1,s2] [--iters 100]

Writes OUT/sweep.json (records + provenance) and OUT/sweep.md.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np
from scipy import ndimage

from lrrjax import io, metrics, provenance
from lrrjax.lrr import admm, solver
from lrrjax.lrr import train as lrr_train

# name -> (LRR config overrides, description); solved with the robust atom update.
MODELS = {
    "default": ({}, "model-based LRR, default config (lam 0.1)"),
    "lam0.03": ({"model.lam": 0.03}, "lam = 0.03"),
    "lam0.3": ({"model.lam": 0.3}, "lam = 0.3"),
    "lam1": ({"model.lam": 1.0}, "lam = 1"),
    "beta0.01": ({"model.beta": 0.01}, "+ beta ||L||_1, beta = 0.01"),
    "beta0.03": ({"model.beta": 0.03}, "+ beta ||L||_1, beta = 0.03"),
    "beta0.1": ({"model.beta": 0.1}, "+ beta ||L||_1, beta = 0.1"),
}

SCORES = {
    "rx-residual": "RX (Mahalanobis) distance of the residual X - DL",
    "whitened-residual": "||X - DL|| after noise whitening (shift-difference covariance)",
    "mean3x3": "3 x 3 mean filter of ||s_i||",
}


def mahalanobis_n(r_bn: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
  """Squared Mahalanobis distance of each column to the column mean.

  Covariance ``C + ridge * tr(C)/B * I`` (float64).
  """
  r = r_bn.astype(np.float64)
  rc = r - r.mean(axis=1, keepdims=True)
  c = rc @ rc.T / r.shape[1]
  c += ridge * np.trace(c) / c.shape[0] * np.eye(c.shape[0])
  return np.einsum("bn,bn->n", rc, np.linalg.solve(c, rc))


def noise_whitener(x_bn: np.ndarray, height: int, width: int) -> np.ndarray:
  """``C_n^{-1/2}`` from vertical shift differences, ``C_n = E[dd^T]/2`` (B x B)."""
  cube = x_bn.T.reshape(height, width, -1).astype(np.float64)
  d = (cube[1:] - cube[:-1]).reshape(-1, cube.shape[2])
  c = d.T @ d / (2 * d.shape[0])
  c += 1e-6 * np.trace(c) / c.shape[0] * np.eye(c.shape[0])
  lam, u = np.linalg.eigh(c)
  return (u / np.sqrt(lam)) @ u.T


def false_alarm_profile(scores_n: np.ndarray, labels_n: np.ndarray, height: int,
                        width: int) -> dict:
  """Where the strongest background scores are (a description; GT only scores).

  Background pixels above the background's 99th percentile of the score: how
  many, the size of their largest 8-connected block, and how many anomaly
  pixels reach that level.
  """
  labels_n = np.asarray(labels_n, bool)
  bg, an = scores_n[~labels_n], scores_n[labels_n]
  p99 = float(np.percentile(bg, 99))
  above_bg = ((scores_n > p99) & ~labels_n).reshape(height, width)
  blocks, n_blocks = ndimage.label(above_bg, structure=np.ones((3, 3)))
  largest = int(np.bincount(blocks.ravel())[1:].max()) if n_blocks else 0
  return {"background_p99": p99, "background_above_p99": int(above_bg.sum()),
          "largest_block": largest, "anomaly_pixels": int(labels_n.sum()),
          "anomaly_above_p99": int(np.sum(an > p99)),
          "anomaly_median": float(np.median(an)) if an.size else None}


def run(out: pathlib.Path, models: list[str], scenes: list[pathlib.Path],
        iters: int) -> list[dict]:
  out.mkdir(parents=True, exist_ok=True)
  records = []
  for path in scenes:
    scene = io.load_scene(path)
    labels = scene.gt.ravel()
    h, w = scene.height, scene.width
    for name in models:
      overrides, desc = MODELS[name]
      cfg = lrr_train.config_with(overrides)
      x_bn = scene.x_bn(cfg.normalize)
      t0 = time.perf_counter()
      d_bk = lrr_train.init_dictionary(x_bn, cfg.model, cfg.seed)
      res = solver.solve_with_config(x_bn, d_bk, cfg.model, iters=iters,
                                     update_dictionary=True)
      s_n = np.asarray(admm.anomaly_scores(res.state.s_bn))
      seconds = time.perf_counter() - t0
      rank = int(res.trace.rank[-1])
      maps = {name: (s_n, desc)}
      if name == "default":
        resid_bn = x_bn - np.asarray(res.state.d_bk @ res.state.l_kn)
        maps["rx-residual"] = (mahalanobis_n(resid_bn), SCORES["rx-residual"])
        wr = noise_whitener(x_bn, h, w) @ resid_bn.astype(np.float64)
        maps["whitened-residual"] = (np.linalg.norm(wr, axis=0), SCORES["whitened-residual"])
        maps["mean3x3"] = (ndimage.uniform_filter(s_n.reshape(h, w), 3, mode="reflect").ravel(),
                           SCORES["mean3x3"])
      for variant, (scores, vdesc) in maps.items():
        rec = {"variant": variant, "description": vdesc, "model": name,
               "overrides": overrides, "scene": scene.name, "iters": iters,
               "seconds": seconds, "rank_l": rank, **metrics.roc3d(scores, labels)}
        if variant == "default":
          rec["false_alarms"] = false_alarm_profile(scores, labels, h, w)
        records.append(rec)
      print(f"{name:10s} {scene.name:16s} AUC(D,F)={metrics.auc_df(s_n, labels):.4f} "
            f"rank(L)={rank} {seconds:.1f}s", flush=True)
      provenance.write_json(out / "sweep.json",
                            {"records": records, "iters": iters,
                             "provenance": provenance.record(lrr_train.config_with({}))})
  _write_md(out / "sweep.md", records, models)
  return records


def _write_md(path, records, models):
  scenes = list(dict.fromkeys(r["scene"] for r in records))
  variants = list(dict.fromkeys(r["variant"] for r in records))
  cell = {(r["scene"], r["variant"]): r["auc_df"] for r in records}
  oracle = {s: max(cell[(s, m)] for m in models if (s, m) in cell) for s in scenes}
  cols = variants + ["oracle*"]
  lines = ["| scene | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
  for s in scenes:
    vals = [f"{cell[(s, v)]:.4f}" if (s, v) in cell else "-" for v in variants]
    lines.append(f"| {s} | " + " | ".join(vals + [f"{oracle[s]:.4f}"]) + " |")
  means = [np.mean([cell[(s, v)] for s in scenes if (s, v) in cell]) for v in variants]
  worst = [min(cell[(s, v)] for s in scenes if (s, v) in cell) for v in variants]
  lines.append("| **mean** | " + " | ".join(
      f"**{m:.4f}**" for m in means + [np.mean(list(oracle.values()))]) + " |")
  lines.append("| worst | " + " | ".join(
      f"{m:.4f}" for m in worst + [min(oracle.values())]) + " |")
  lines += ["", "oracle*: per scene, the best of the model variants "
            f"({', '.join(models)}) picked with the ground truth: an upper bound of "
            "per-scene lambda/beta tuning, for insight only, never a result of the package."]
  path.write_text("\n".join(lines) + "\n")


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--out", default="results/sweep")
  ap.add_argument("--models", default=",".join(MODELS))
  ap.add_argument("--scenes", default="", help="comma-separated scene names (default: all)")
  ap.add_argument("--iters", type=int, default=100, help="ADMM iterations (the teacher's)")
  ap.add_argument("--data-dir", default=None)
  args = ap.parse_args(argv)
  scenes = io.list_scenes(args.data_dir, args.scenes)  # no --data-dir: io.data_dir()
  models = args.models.split(",")
  unknown = [m for m in models if m not in MODELS]
  if unknown:
    ap.error(f"unknown model variant(s) {unknown}; known: {list(MODELS)}")
  run(pathlib.Path(args.out), models, scenes, args.iters)


if __name__ == "__main__":
  main()
