"""The exported detector against `score_cube` on the benchmark scenes (issue #9 item 3).

  python experiments/export_check.py --out results/export/export_check.json [--scenes a,b]

The network is `cross.model_from_config(get_general_config())` (the default
config, untrained) with a fixed non-trivial score head (``HEAD_A`` below): no
trained parameter file exists yet, and what is checked is the equality of two
code paths, not detection quality (no AUC is computed, no ground truth is read).

Per scene:
* ``prepare`` (float32 jnp normalisation, :func:`general.scene_context`) against
  the context the code had before the export change (float64 numpy
  normalisation ``io.normalize`` + ``context_of``; the row/pixel samples are
  compared separately as index arrays against ``np.linspace``): max |x| difference,
  equal atoms, max relative difference of the band noise and of the scores;
* the export file (written by ``export_detector``, platforms cpu, cuda, tpu), read back
  with ``jax.export.deserialize`` and called on the raw cube, against
  ``cross.score_cube``: max |difference| / max |score|.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from lrrjax import export as ex
from lrrjax import io, provenance
from lrrjax.lrr import cross, general
from lrrjax.lrr.config import get_general_config

HEAD_A = (1.0, -1.0)   # head weights a_f = linspace(1, -1, F): non-trivial, fixed


def make_model(cfg):
  model = cross.model_from_config(cfg)
  model.a_f[...] = jnp.linspace(*HEAD_A, general.N_FEATURES)
  return model


def rel(a, b) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def check_scene(path, model, cfg, detector) -> dict:
  scene = io.load_scene(path)
  h, w, b = scene.cube.shape
  kw = cross.context_kwargs(cfg)
  old = general.context_of(io.normalize(scene.cube, "global").reshape(h * w, b).T, h, w, **kw)
  new = general.prepare(scene.cube, **kw)
  t0 = time.perf_counter()
  want = cross.score_cube(model, cfg, scene.cube)
  t_detect = time.perf_counter() - t0
  old_scores = general.detect(model, old, h, w).reshape(h, w)
  cube32 = np.asarray(scene.cube, np.float32)
  t0 = time.perf_counter()
  got = np.asarray(detector.call(cube32))
  t_export = time.perf_counter() - t0
  n = h * w
  rows_same = bool(np.array_equal(np.asarray(general.even_sample(h, min(h, 256))),
                                  np.unique(np.linspace(0, h - 1, min(h, 256)).astype(int))))
  pix_same = bool(np.array_equal(np.asarray(general.even_sample(n, min(n, cfg.net.n_sample))),
                                 np.unique(np.linspace(0, n - 1, min(n, cfg.net.n_sample))
                                           .astype(np.int32))))
  return {"scene": scene.name, "shape": [h, w, b], "dtype": str(scene.cube.dtype),
          "samples_equal_linspace": rows_same and pix_same,
          "x_max_abs_diff_vs_numpy_norm": float(np.max(np.abs(np.asarray(new.x_bn)
                                                              - np.asarray(old.x_bn)))),
          "atoms_equal_vs_numpy_norm": bool(np.array_equal(np.asarray(new.atoms_k),
                                                           np.asarray(old.atoms_k))),
          "noise_rel_diff_vs_numpy_norm": rel(new.noise_b, old.noise_b),
          "scores_rel_diff_vs_numpy_norm": rel(want, old_scores),
          "export_rel_diff_vs_score_cube": rel(got, want),
          "score_cube_first_call_s": t_detect, "export_first_call_s": t_export}


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--out", required=True)
  ap.add_argument("--data", default=None, help="scene folder (default LRRJAX_DATA_DIR or ../shared/data)")
  ap.add_argument("--scenes", default=None, help="comma-separated scene names")
  args = ap.parse_args()
  data = pathlib.Path(args.data) if args.data else None  # io.data_dir()
  cfg = get_general_config()
  prov = provenance.record(config=cfg, seed=int(cfg.seed))  # at the start: the code that ran
  model = make_model(cfg)
  t0 = time.perf_counter()
  blob = ex.export_detector(model, cfg, ex.PLATFORMS)
  t_export = time.perf_counter() - t0
  _, _, payload = blob.split(b"\n", 2)
  detector = jax.export.deserialize(bytearray(payload))
  names = args.scenes.split(",") if args.scenes else None
  rows = []
  for p in io.list_scenes(data, names):
    rows.append(check_scene(p, model, cfg, detector))
    print({k: rows[-1][k] for k in ("scene", "atoms_equal_vs_numpy_norm",
                                     "scores_rel_diff_vs_numpy_norm",
                                     "export_rel_diff_vs_score_cube")}, flush=True)
  summary = {
      "scenes": len(rows),
      "max_export_rel_diff_vs_score_cube": max(r["export_rel_diff_vs_score_cube"] for r in rows),
      "max_scores_rel_diff_vs_numpy_norm": max(r["scores_rel_diff_vs_numpy_norm"] for r in rows),
      "all_atoms_equal_vs_numpy_norm": all(r["atoms_equal_vs_numpy_norm"] for r in rows),
      "all_samples_equal_linspace": all(r["samples_equal_linspace"] for r in rows),
      "export_seconds": t_export, "export_bytes": len(blob), "platforms": list(ex.PLATFORMS),
  }
  provenance.write_json(args.out, {"summary": summary, "scenes": rows, "head": {"a_f": list(HEAD_A)},
                                   "provenance": prov})
  print(summary)


if __name__ == "__main__":
  main()
