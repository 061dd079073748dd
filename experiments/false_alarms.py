"""What drives the shipped LRR-Net+'s strongest false alarms (a diagnostic).

  python experiments/false_alarms.py --out results/low_far/false_alarms_v6.json \
      [--scenes abu-beach-1,abu-beach-2] [--data DIR] [--top 0.01]

For each scene, the shipped head's score is ``z = sum_f softplus(a_f) phi_f``;
this reports each feature's weighted contribution ``softplus(a_f) phi_f``
averaged over the target pixels and over the top ``--top`` share of the
background pixels by score (the false alarms an operator would see first),
and the share of those background pixels within 2 pixels of the image border
(against the border's share of the image). Ground truth only separates targets
from background here; nothing feeds back into a default. To look at another
parameter version run this file with ``PYTHONPATH`` at that revision's package
(the record names the package's revision and this file's).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys

import jax
import numpy as np

from lrrjax import io, provenance
from lrrjax.lrr import cross, general, methods


def scene_record(model, cfg, scene, top: float) -> dict:
  h, w, _ = scene.cube.shape
  ctx = general.prepare(scene.cube, **cross.context_kwargs(cfg))
  out = model(ctx, h, w)
  phi = np.asarray(out.phi_fn, np.float64)
  z = np.asarray(out.scores_n, np.float64)
  weights = np.asarray(jax.nn.softplus(model.a_f[...]), np.float64)
  contrib = weights[:, None] * phi
  gt = np.asarray(scene.gt, bool).reshape(-1)
  bg = np.flatnonzero(~gt)
  k = max(1, int(round(top * bg.size)))
  worst = bg[np.argsort(z[bg])[::-1][:k]]
  r, c = np.divmod(worst, w)
  rr, cc = np.divmod(np.arange(h * w), w)

  def near_border(r, c):
    return (r <= 2) | (r >= h - 3) | (c <= 2) | (c >= w - 3)

  return {"scene": scene.name, "shape": [h, w], "targets": int(gt.sum()),
          "top_background_pixels": k,
          "mean_score_targets": float(z[gt].mean()),
          "mean_score_top_background": float(z[worst].mean()),
          "contribution_targets": contrib[:, gt].mean(axis=1).tolist(),
          "contribution_top_background": contrib[:, worst].mean(axis=1).tolist(),
          "top_background_near_border": float(near_border(r, c).mean()),
          "image_near_border": float(near_border(rr, cc).mean())}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
  p.add_argument("--out", required=True)
  p.add_argument("--scenes", default="abu-beach-1,abu-beach-2")
  p.add_argument("--data", default=None)
  p.add_argument("--top", type=float, default=0.01)
  a = p.parse_args(argv)
  data = pathlib.Path(a.data if a.data is not None else io.data_dir())
  model, cfg = methods.load_general()
  recs = []
  for name in a.scenes.split(","):
    paths = io.list_scenes(data, [name])
    if not paths:
      raise SystemExit(f"{data}: no scene named {name}")
    rec = scene_record(model, cfg, io.load_scene(paths[0]), a.top)
    recs.append(rec)
    order = np.argsort(rec["contribution_top_background"])[::-1][:3]
    print(f"{name}: score targets {rec['mean_score_targets']:.2f}, top background "
          f"{rec['mean_score_top_background']:.2f}; largest contributions there (feature: "
          "top background / targets) "
          + ", ".join(f"{i}: {rec['contribution_top_background'][i]:.2f} / "
                      f"{rec['contribution_targets'][i]:.2f}" for i in order)
          + f"; near the border {rec['top_background_near_border']:.2f} "
            f"(image {rec['image_near_border']:.2f})", flush=True)
  here = pathlib.Path(__file__).resolve().parent
  rev = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                       text=True, check=False).stdout.strip()
  out = pathlib.Path(a.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps({"records": recs, "top": a.top, "n_features": len(recs[0][
      "contribution_targets"]) if recs else 0, "script_revision": rev,
      "provenance": provenance.record()}, indent=1), encoding="utf-8")
  return 0


if __name__ == "__main__":
  sys.exit(main())
