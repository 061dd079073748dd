"""Speed and memory of LRR-Net+ train + detect (the issue's targets), any backend.

  python experiments/timing.py --out results/timing.json [--scenes a,b] [--repeats 3]

Per scene: the first train+detect (JIT compilation included), then `repeats`
warm runs of train+detect (median reported), and detect alone with the trained
parameters (median of `repeats`). Peak host memory (max RSS) and, on GPU/TPU,
the device's peak bytes in use. Writes JSON with provenance.
"""

from __future__ import annotations

import argparse
import pathlib
import resource
import statistics
import time

import jax
import numpy as np

from lrrjax import io, provenance, synthetic
from lrrjax.lrr import train as lrr_train


def _train_detect(x_bn, cfg):
  t0 = time.perf_counter()
  result = lrr_train.train(x_bn, cfg)
  t1 = time.perf_counter()
  s_n = lrr_train.detect(result.model, x_bn)
  t2 = time.perf_counter()
  return result, s_n, t1 - t0, t2 - t1


def time_scene(scene, repeats: int) -> dict:
  cfg = lrr_train.config_with({})
  x_bn = scene.x_bn(cfg.normalize)
  _, _, tr0, de0 = _train_detect(x_bn, cfg)
  warm = [_train_detect(x_bn, cfg) for _ in range(repeats)]
  result = warm[-1][0]
  detect_only = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    lrr_train.detect(result.model, x_bn)
    detect_only.append(time.perf_counter() - t0)
  total_warm = [w[2] + w[3] for w in warm]
  rec = {
      "scene": scene.name, "shape": list(scene.cube.shape),
      "first_train_detect_s": tr0 + de0,
      "median_train_detect_s": statistics.median(total_warm),
      "compile_s_estimate": tr0 + de0 - statistics.median(total_warm),
      "median_detect_trained_s": statistics.median(detect_only),
      "steps": result.stopped_at,
      "max_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20,
  }
  stats = jax.devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    rec["device_peak_gib"] = stats["peak_bytes_in_use"] / 2 ** 30
  if scene.gt is not None:
    rec["auc_df"] = float(_auc(warm[-1][1], scene.gt.ravel()))
  return rec


def _auc(s, y):
  from lrrjax import metrics
  return metrics.auc_df(np.asarray(s), y)


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--out", default="results/timing.json")
  ap.add_argument("--scenes", default="abu-airport-1,abu-urban-1,sandiego",
                  help="scene names in the data folder, or 'synthetic'")
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--data-dir", default=None)
  args = ap.parse_args(argv)
  data = pathlib.Path(args.data_dir) if args.data_dir else io.data_dir()
  records = []
  for name in args.scenes.split(","):
    scene = (synthetic.make_scene(100, 100, 200, seed=0) if name == "synthetic"
             else io.load_scene(data / f"{name}.mat"))
    rec = time_scene(scene, args.repeats)
    records.append(rec)
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in rec.items()), flush=True)
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  provenance.write_json(out, {"records": records, "provenance": provenance.record()})


if __name__ == "__main__":
  main()
