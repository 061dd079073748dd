"""Per-stage convergence of LRR-Net+ vs iterations of the model-based LRR solver.

  python experiments/convergence.py --scene abu-urban-1 --out results/convergence

Trains LRR-Net+ (default config) on the scene, then records at every stage t
the MSE ``mean (X - D L - S)^2`` and the relative error ``||X - D L - S||_F /
||X||_F`` of the trained network, the untrained network, and the model-based
ADMM (same dictionary initialisation, same lam / mu schedule) run for
``--iters`` iterations. Writes OUT/convergence.json (+ provenance) and
OUT/convergence.png. No ground truth is read except to report AUC(D,F).
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np

from lrrjax import io, metrics, plots, provenance
from lrrjax.lrr import admm, solver
from lrrjax.lrr import train as lrr_train


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--scene", default="abu-urban-1")
  ap.add_argument("--iters", type=int, default=100)
  ap.add_argument("--out", default="results/convergence")
  ap.add_argument("--data-dir", default=None)
  args = ap.parse_args(argv)
  data = pathlib.Path(args.data_dir) if args.data_dir else io.data_dir()
  scene = io.load_scene(data / f"{args.scene}.mat")
  cfg = lrr_train.config_with({})
  x_bn = scene.x_bn(cfg.normalize)
  untrained = lrr_train.build_model(x_bn, cfg)
  trained = lrr_train.train(x_bn, cfg).model
  m = cfg.model
  d_bk = lrr_train.init_dictionary(x_bn, m, cfg.seed)
  ref = solver.solve_with_config(x_bn, d_bk, m, iters=args.iters,
                                 update_dictionary=m.learn_dictionary)
  labels = scene.gt.ravel() if scene.gt is not None else None
  out = {"scene": scene.name, "stages": m.stages, "iters": args.iters, "curves": {}}
  for name, model in (("LRR-Net+ (trained)", trained), ("LRR-Net+ (untrained)", untrained)):
    res = model(x_bn, with_trace=True)
    out["curves"][name] = {"mse": np.asarray(res.trace.mse).tolist(),
                           "rel_error": np.asarray(res.trace.rel_residual).tolist()}
    if labels is not None:
      out["curves"][name]["auc_df"] = metrics.auc_df(
          np.asarray(admm.anomaly_scores(res.s_bn)), labels)
  out["curves"]["LRR ADMM (model-based)"] = {
      "mse": np.asarray(ref.trace.mse).tolist(),
      "rel_error": np.asarray(ref.trace.rel_residual).tolist(),
      "objective": np.asarray(ref.trace.objective).tolist(),
      "rank": np.asarray(ref.trace.rank).tolist()}
  if labels is not None:
    out["curves"]["LRR ADMM (model-based)"]["auc_df"] = metrics.auc_df(
        np.asarray(admm.anomaly_scores(ref.state.s_bn)), labels)
  dest = pathlib.Path(args.out)
  dest.mkdir(parents=True, exist_ok=True)
  n = args.iters
  pad = lambda v: np.concatenate([v, np.full(n - len(v), np.nan)])
  for key, label in (("mse", "MSE"), ("rel_error", "||X - DL - S||_F / ||X||_F")):
    plots.save_curves(dest / f"convergence_{key}.png", np.arange(1, n + 1),
                      {k: pad(np.asarray(v[key])) for k, v in out["curves"].items()},
                      "stage / iteration", label,
                      f"{scene.name}: LRR-Net+ stages vs ADMM iterations", logy=True)
  out["provenance"] = provenance.record(config=cfg.to_dict())
  provenance.write_json(dest / "convergence.json", out)
  for k, v in out["curves"].items():
    print(f"{k:24s} " + " ".join(f"t{t + 1}:{v['rel_error'][t]:.2e}" for t in
                                  sorted({0, 4, m.stages - 1, len(v['rel_error']) - 1}))
          + (f" AUC={v['auc_df']:.4f}" if "auc_df" in v else ""))


if __name__ == "__main__":
  main()
