"""Honest generalisation numbers of the cross-scene LRR-Net+ (issue #8).

Leave-one-scene-out (LOSO): for every scene of DATA_DIR, train on all the others
(implants only; no ground truth is read in training) and score the held-out
scene; then the cross-sensor split: train on the ABU scenes only and score the
others (San Diego, HYDICE Urban). Ground truth only scores.

  python experiments/generalization.py --out results/generalization

Phase 1 features (stages at their classical schedule) of every implanted scene
are computed once and shared by the folds; a fold uses only the versions whose
host *and* donor scenes are in its training set. With ``--set
train.joint_steps=N`` (phase 2) every fold is trained from scratch instead.
Writes ``OUT/generalization.json`` (per-scene AUCs, config, provenance) and
``OUT/generalization.md``.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import numpy as np

from lrrjax import cli, io, metrics, provenance
from lrrjax.lrr import config as lrr_config
from lrrjax.lrr import cross, general


def _log(msg):
  print(time.strftime("%H:%M:%S"), msg, file=sys.stderr, flush=True)


def run(data_dir, out, overrides=None, names=None, abu_prefix="abu-",
        features=None, pool_cache=None) -> dict:
  """LOSO + cross-sensor; ``features`` (indices) restricts the head to those
  features (an ablation: the others are zeroed in the pool and the scenes)."""
  cfg = lrr_config.get_general_config()
  cli.apply_overrides(cfg, overrides or {})
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  paths = io.list_scenes(data_dir, names)
  scenes = [io.load_scene(p) for p in paths]
  stems = [s.name for s in scenes]
  cubes = [io.normalize(s.cube, "global") for s in scenes]
  t0 = time.perf_counter()
  joint = int(cfg.train.joint_steps) > 0
  pool = None
  if not joint:
    cache = pathlib.Path(pool_cache) if pool_cache else out / "feature_pool.npz"
    pool = cross.load_feature_pool(cache, cfg, stems)
    if pool is None:
      pool = cross.build_feature_pool(cubes, cfg, progress=_log)
      cross.save_feature_pool(cache, pool, cfg, stems)
  pool_seconds = time.perf_counter() - t0
  base = cross.model_from_config(cfg)
  feats = None if joint else [cross.scene_features(base, cfg, c) for c in cubes]
  if features is not None and not joint:
    keep = np.zeros(general.N_FEATURES, np.float32)
    keep[list(features)] = 1.0
    pool = pool._replace(phi_pos_vfm=pool.phi_pos_vfm * keep[:, None],
                         phi_neg_vfq=pool.phi_neg_vfq * keep[:, None])
    feats = [f * keep[:, None] for f in feats]

  def fit_and_score(train_idx, test_idx):
    if joint:
      res = cross.train_general([cubes[i] for i in train_idx], cfg,
                                scene_names=[stems[i] for i in train_idx])
      model = res.model
      z = [cross.score_cube(model, cfg, scenes[i].cube) for i in test_idx]
      return z, res.history
    model = cross.model_from_config(cfg)
    held = [i for i in range(len(scenes)) if i not in train_idx]
    losses = cross.train_head(model, pool, cross.fold_mask(pool, held),
                              int(cfg.train.head_steps), float(cfg.train.head_lr),
                              **cross.head_loss_options(cfg.train))
    z = [np.asarray(general.head(model.head_params(), feats[i])).reshape(
        scenes[i].height, scenes[i].width) for i in test_idx]
    return z, {"head_loss": [float(losses[0]), float(losses[-1])],
               "head_weights": np.asarray(jax.nn.softplus(model.a_f[...])).tolist()}

  records = []
  for i, sc in enumerate(scenes):
    t = time.perf_counter()
    z, hist = fit_and_score([j for j in range(len(scenes)) if j != i], [i])
    rec = {"split": "loso", "scene": sc.name, "train": [s for s in stems if s != sc.name],
           "seconds": time.perf_counter() - t, "history": hist,
           **{k: float(v) for k, v in metrics.evaluate(z[0], sc.gt).items()},
           "partial_auc_1e-2": metrics.partial_auc_df(z[0], sc.gt)}
    if feats is not None:
      rec["untrained_auc_df"] = float(metrics.evaluate(
          feats[i][0].reshape(sc.height, sc.width), sc.gt)["auc_df"])
    records.append(rec)
    _log(f"loso {sc.name}: AUC(D,F) {rec['auc_df']:.4f}")
  abu = [i for i, s in enumerate(stems) if s.startswith(abu_prefix)]
  other = [i for i in range(len(stems)) if i not in abu]
  if abu and other:
    z, hist = fit_and_score(abu, other)
    for k, i in enumerate(other):
      rec = {"split": "abu-only", "scene": stems[i], "train": [stems[j] for j in abu],
             "history": hist,
             **{kk: float(v) for kk, v in metrics.evaluate(z[k], scenes[i].gt).items()},
             "partial_auc_1e-2": metrics.partial_auc_df(z[k], scenes[i].gt)}
      records.append(rec)
      _log(f"abu-only -> {stems[i]}: AUC(D,F) {rec['auc_df']:.4f}")
  loso = [r["auc_df"] for r in records if r["split"] == "loso"]
  summary = {"loso_mean_auc_df": float(np.mean(loso)), "loso_min_auc_df": float(np.min(loso)),
             "loso_mean_partial_auc_1e-2": float(np.mean(
                 [r["partial_auc_1e-2"] for r in records if r["split"] == "loso"])),
             "features": None if features is None else list(features),
             "pool_seconds": pool_seconds, "seconds": time.perf_counter() - t0}
  obj = {"records": records, "summary": summary,
         "provenance": provenance.record(config=cfg, seed=int(cfg.seed))}
  provenance.write_json(out / "generalization.json", obj)
  (out / "generalization.md").write_text(render(records, summary))
  return obj


def render(records, summary) -> str:
  lines = ["| split | scene | AUC(D,F) | untrained | AUC(D,tau) | AUC(F,tau) | partial AUC FAR<=1e-2 |",
           "|---|---|---:|---:|---:|---:|---:|"]
  for r in records:
    un = r.get("untrained_auc_df")
    lines.append(f"| {r['split']} | {r['scene']} | {r['auc_df']:.4f} | "
                 f"{'' if un is None else f'{un:.4f}'} | {r.get('auc_dt', float('nan')):.4f} | "
                 f"{r.get('auc_ft', float('nan')):.4f} | "
                 f"{r.get('partial_auc_1e-2', float('nan')):.4f} |")
  lines.append(f"\nLOSO mean {summary['loso_mean_auc_df']:.4f}, worst "
               f"{summary['loso_min_auc_df']:.4f}, mean partial AUC (FAR <= 1e-2) "
               f"{summary.get('loso_mean_partial_auc_1e-2', float('nan')):.4f}.\n")
  return "\n".join(lines)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--data", default=None, help="scene folder (default LRRJAX_DATA_DIR)")
  p.add_argument("--out", required=True)
  p.add_argument("--scenes", default=None, help="comma-separated subset")
  p.add_argument("--features", default=None,
                 help="ablation: comma-separated feature indices the head may use")
  p.add_argument("--pool-cache", default=None, help="feature pool .npz to reuse / write")
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="generalised LRR-Net+ config override (lrrjax.lrr.config.get_general_config)")
  a = p.parse_args(argv)
  feats = None if a.features is None else [int(v) for v in a.features.split(",")]
  obj = run(a.data if a.data is not None else io.data_dir(), a.out, cli.parse_sets(a.set),
            a.scenes, features=feats, pool_cache=a.pool_cache)
  s = obj["summary"]
  print(f"LOSO mean AUC(D,F) {s['loso_mean_auc_df']:.4f}, worst {s['loso_min_auc_df']:.4f} "
        f"-> {pathlib.Path(a.out) / 'generalization.md'}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
