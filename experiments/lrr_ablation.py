"""LRR-Net+ ablations over the shared scenes: loss variants and dictionary updates.

Every variant is one set of LRR config overrides applied to *all* scenes.
Training never reads the ground truth; it only scores the final maps and, for
the AUC-vs-step figure (insight only, never used to choose anything), the map
after every training step.

  python experiments/lrr_ablation.py --out results/ablation [--variants a,b] [--scenes s1,s2]

Writes OUT/ablation.json (records + provenance), OUT/ablation.md (scene x
variant AUC(D,F) table) and OUT/auc_vs_step.png.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

from lrrjax import io, metrics, plots, provenance
from lrrjax.lrr import train as lrr_train

# name -> (LRR config overrides, description)
VARIANTS = {
    "admm10-fixed": ({"model.learn_dictionary": False, "train.steps": 0},
                     "10 ADMM stages, fixed LRASR dictionary, untrained"),
    "admm10-naive": ({"model.outlier_k": 1e30, "train.steps": 0},
                     "10 stages, naive atom update (all pixels), untrained"),
    "admm10-robust": ({"train.steps": 0},
                      "10 stages, robust atom update (median+3 MAD mask), untrained"),
    "default": ({}, "LRR-Net+ default configuration (loss: distill)"),
    "lrrnet": ({"model.learn_dictionary": False},
               "LRR-Net: trained thresholds, frozen dictionary (default loss)"),
    "naive-trained": ({"model.outlier_k": 1e30}, "LRR-Net+ with the naive atom update"),
    "mse": ({"train.loss": "mse"}, "loss = relative MSE only"),
    "objective": ({"train.loss": "objective"}, "loss = rel MSE + 0.01 x LRR objective"),
    "objective-a1": ({"train.loss": "objective", "train.alpha": 1.0},
                     "loss = rel MSE + 1.0 x LRR objective"),
    "frozenD0": ({"train.train_dictionary": False}, "default loss, D0 not trained"),
    "d0-lr-x1": ({"train.dict_lr_scale": 1.0}, "D0 trained with the full Adam learning rate"),
    "tied": ({"model.tie_stages": True}, "one parameter set shared by all stages"),
    "T5": ({"model.stages": 5}, "T = 5 stages"),
    "T20": ({"model.stages": 20}, "T = 20 stages"),
    "T40": ({"model.stages": 40}, "T = 40 stages"),
}


def run(out: pathlib.Path, variants: list[str], scenes: list[pathlib.Path]) -> list[dict]:
  out.mkdir(parents=True, exist_ok=True)
  records = []
  curves: dict[str, list[list[float]]] = {}
  for name in variants:
    overrides, desc = VARIANTS[name]
    for path in scenes:
      scene = io.load_scene(path)
      cfg = lrr_train.config_with(overrides)
      x_bn = scene.x_bn(cfg.normalize)
      labels = scene.gt.ravel()
      per_step: list[float] = []

      def inspect(step, model, per_step=per_step, x_bn=x_bn, labels=labels):
        per_step.append(metrics.auc_df(lrr_train.detect(model, x_bn), labels))

      t0 = time.perf_counter()
      result = lrr_train.train(x_bn, cfg, inspect=inspect)
      s_n = lrr_train.detect(result.model, x_bn)
      seconds = time.perf_counter() - t0
      rec = {"variant": name, "description": desc, "overrides": overrides,
             "scene": scene.name, "steps": result.stopped_at, "seconds": seconds,
             "auc_by_step": per_step,
             "final_loss": result.history["loss"][-1] if result.history["loss"] else None,
             **metrics.roc3d(s_n, labels)}
      records.append(rec)
      curves.setdefault(name, []).append(per_step)
      print(f"{name:20s} {scene.name:16s} AUC(D,F)={rec['auc_df']:.4f} "
            f"steps={result.stopped_at} {seconds:.1f}s", flush=True)
      provenance.write_json(out / "ablation.json",
                            {"records": records, "provenance": provenance.record()})
  _write_md(out / "ablation.md", records, variants)
  _plot(out / "auc_vs_step.png", curves)
  return records


def _write_md(path, records, variants):
  scenes = list(dict.fromkeys(r["scene"] for r in records))
  cell = {(r["scene"], r["variant"]): r for r in records}
  lines = ["| scene | " + " | ".join(variants) + " |",
           "|---|" + "---|" * len(variants)]
  for s in scenes:
    lines.append(f"| {s} | " + " | ".join(
        f"{cell[(s, v)]['auc_df']:.4f}" if (s, v) in cell else "-" for v in variants) + " |")
  means = [np.mean([cell[(s, v)]["auc_df"] for s in scenes if (s, v) in cell]) for v in variants]
  lines.append("| **mean** | " + " | ".join(f"**{m:.4f}**" for m in means) + " |")
  mins = [min(cell[(s, v)]["auc_df"] for s in scenes if (s, v) in cell) for v in variants]
  lines.append("| worst | " + " | ".join(f"{m:.4f}" for m in mins) + " |")
  secs = [np.mean([cell[(s, v)]["seconds"] for s in scenes if (s, v) in cell]) for v in variants]
  lines.append("| mean seconds | " + " | ".join(f"{m:.1f}" for m in secs) + " |")
  path.write_text("\n".join(lines) + "\n")


def _plot(path, curves):
  ys = {}
  for name, runs in curves.items():
    n = max(len(r) for r in runs)
    if n < 2:
      continue
    padded = np.array([r + [r[-1]] * (n - len(r)) for r in runs])
    ys[name] = padded.mean(axis=0)
  if ys:
    n = max(len(v) for v in ys.values())
    ys = {k: np.concatenate([v, np.full(n - len(v), v[-1])]) for k, v in ys.items()}
    plots.save_curves(path, np.arange(n), ys, "training step",
                      "mean AUC(D,F) over scenes (insight only)",
                      "AUC(D,F) vs training step (never used to choose)")


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--out", default="results/ablation")
  ap.add_argument("--variants", default=",".join(VARIANTS))
  ap.add_argument("--scenes", default="", help="comma-separated scene names (default: all)")
  ap.add_argument("--data-dir", default=None)
  args = ap.parse_args(argv)
  scenes = io.list_scenes(args.data_dir, args.scenes)  # no --data-dir: io.data_dir()
  variants = args.variants.split(",")
  unknown = [v for v in variants if v not in VARIANTS]
  if unknown:
    sys.exit(f"error: unknown variant(s) {unknown}; known: {list(VARIANTS)}")
  run(pathlib.Path(args.out), variants, scenes)


if __name__ == "__main__":
  main()
