"""Tiled vs whole-scene scores on a crop that fits in memory.

  python experiments/tiled_check.py CUBE.npy --crop 1024 --tile-rows 64 \
      --methods grx --out results/scaling/tiled_check.json [--work /tmp/lrrjax_scaling]

Cuts the top-left ``crop x crop`` block of ``CUBE`` (a .npy, read as a strip
so the big cube is never loaded) into ``WORK/crop_<crop>.npy``, then scores it
twice per method in this process: the whole-scene path
(``detectors.run_method`` on the loaded Scene, as ``lrrjax detect`` does when
the cube fits the budget) and the tiled path (``streaming.detect_tiled`` with
``--tile-rows``). Reports the largest absolute and relative differences, the
score quantiles of both, Spearman's rank correlation and the seconds of each;
with ``--gt MAP.npy`` (an H x W mask of the big cube) also AUC(D,F) of both.
Records of earlier runs into the same ``--out`` for other methods are kept.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np
import scipy.stats

REPO = pathlib.Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("cube")
  p.add_argument("--crop", type=int, default=1024)
  p.add_argument("--tile-rows", type=int, default=64)
  p.add_argument("--methods", default="grx")
  p.add_argument("--out", required=True)
  p.add_argument("--work", default="/tmp/lrrjax_scaling")
  p.add_argument("--gt", default=None, help="ground-truth mask (.npy, H x W) for AUC(D,F)")
  args = p.parse_args(argv)
  sys.path.insert(0, str(REPO))
  from lrrjax import detectors, io, metrics, provenance, streaming  # pylint: disable=import-outside-toplevel
  from lrrjax.io import lazy  # pylint: disable=import-outside-toplevel
  work = pathlib.Path(args.work)
  work.mkdir(parents=True, exist_ok=True)
  crop = work / f"crop_{args.crop}.npy"
  with lazy.open_cube(args.cube) as big:
    np.save(crop, big.read_rows(0, args.crop)[:, :args.crop])
  records = []
  for method in args.methods.split(","):
    spec = detectors.get_method(method)
    scene = io.load_scene(crop)
    t0 = time.perf_counter()
    whole = detectors.run_method(method, scene)
    t_whole = time.perf_counter() - t0
    del scene
    with tempfile.TemporaryDirectory() as tmp, lazy.open_cube(crop) as cube:
      t0 = time.perf_counter()
      tiled, _, info = streaming.detect_tiled(
          cube, spec, detectors.resolve_params(spec, {}), tmp, args.tile_rows)
      tiled = np.array(tiled)
      t_tiled = time.perf_counter() - t0
    q = [0.0, 0.01, 0.5, 0.99, 0.999, 1.0]
    diff = np.abs(tiled - whole)
    rec = {"method": method, "crop": [args.crop, args.crop, int(cube.shape[2])],
           "tile_rows": args.tile_rows, "tiles": info["tiles"],
           "max_abs_diff": float(diff.max()),
           "max_rel_diff": float((diff / np.maximum(np.abs(whole), 1e-30)).max()),
           "max_diff_over_max_score": float(diff.max() / np.abs(whole).max()),
           "spearman": float(scipy.stats.spearmanr(whole.ravel(), tiled.ravel())[0]),
           "quantiles": q,
           "whole_quantiles": np.quantile(whole, q).tolist(),
           "tiled_quantiles": np.quantile(tiled, q).tolist(),
           "whole_seconds": t_whole, "tiled_seconds": t_tiled}
    if args.gt is not None:
      gt = np.load(args.gt)[:args.crop, :args.crop].astype(bool)
      rec["auc_df_whole"] = float(metrics.evaluate(whole, gt)["auc_df"])
      rec["auc_df_tiled"] = float(metrics.evaluate(tiled, gt)["auc_df"])
    print(rec, file=sys.stderr)
    records.append(rec)
  out = pathlib.Path(args.out)
  if out.exists():
    import json  # pylint: disable=import-outside-toplevel
    old = json.loads(out.read_text())
    if old.get("cube") == str(args.cube):
      records = [r for r in old.get("records", []) if r["method"] not in
                 {r2["method"] for r2 in records}] + records
  provenance.write_json(out, {"cube": str(args.cube), "records": records,
                              "provenance": provenance.record()})
  return 0


if __name__ == "__main__":
  sys.exit(main())
