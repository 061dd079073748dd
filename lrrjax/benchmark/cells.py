"""One benchmark cell: a method on a scene, its record and score map on disk,
and the seed variants of a method."""

import hashlib
import inspect
import json
import os
import pathlib
import sys
import time
from typing import Any, Callable

import numpy as np

from lrrjax import provenance
from lrrjax.errors import ConfigError, SceneError, in_scene

ROC3D_KEYS = ("auc_df", "auc_ft", "auc_dt", "auc_td", "auc_bs", "auc_tdbs",
              "auc_odp", "auc_snpr")


def cell_stem(scene: str, method: str, seed: int | None = None) -> str:
  """File stem of one cell: `<scene>__<method>`, or `<scene>__<method>@seed<s>`."""
  return f"{scene}__{method}" + ("" if seed is None else f"@seed{int(seed)}")


def takes_seed(method: str) -> bool:
  """Whether registered `method`'s function has a ``seed`` keyword parameter."""
  from lrrjax import detectors  # pylint: disable=import-outside-toplevel
  fn = detectors.get_method(method).fn
  return "seed" in list(inspect.signature(fn).parameters)[1:]


def check_seeds(seeds) -> list[int] | None:
  """`seeds` as a list of distinct ints (None stays None); ConfigError otherwise."""
  if seeds is None:
    return None
  out = list(seeds)
  if not out:
    raise ConfigError("seeds: empty list")
  for v in out:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
      raise ConfigError(f"seeds must be integers >= 0, got {v!r} in {out}")
  if len(set(out)) != len(out):
    raise ConfigError(f"duplicate seeds in {out}")
  return [int(v) for v in out]


def seed_variants(method: str, params: dict[str, Any], seeds: list[int] | None
              ) -> list[tuple[int | None, dict[str, Any]]]:
  """(seed, params) of each cell of `method`: one per seed for a seeded method."""
  if seeds is None or not takes_seed(method):
    return [(None, params)]
  if "seed" in params:
    raise ConfigError(f"method {method!r}: give either seeds or a 'seed' parameter, "
                      "not both")
  return [(s, {**params, "seed": s}) for s in seeds]


def say(progress: bool | Callable[[str], None], msg: str) -> None:
  if callable(progress):
    progress(msg)
  elif progress:
    print(msg, file=sys.stderr, flush=True)


def model_identity(method: str, params: dict[str, Any]) -> dict[str, Any] | None:
  """What a cell's scores depend on besides its parameters and the code: for
  ``lrrnet-plus`` with pretrained parameters (no ``finetune``), the parameter
  file's version and sha256, so that a new parameter file makes the old cells
  stale. None for every other method."""
  if method != "lrrnet-plus" or params.get("finetune"):
    return None
  from lrrjax.lrr import cross  # pylint: disable=import-outside-toplevel
  path = pathlib.Path(params.get("pretrained") or cross.DEFAULT_PRETRAINED)
  try:
    data = path.read_bytes()
    version = json.loads(data).get("version")
  except (OSError, ValueError):
    return None  # the method itself reports the unreadable file
  return {"pretrained": path.name, "version": version,
          "sha256": hashlib.sha256(data).hexdigest()}


def provenance_now() -> dict[str, Any]:
  return {"git": provenance.git_revision(), "versions": provenance.package_versions()}


def run_cell(scene, method: str, params: dict[str, Any] | None = None,
             cell_provenance: dict[str, Any] | None = None
             ) -> tuple[dict[str, Any], np.ndarray]:
  """Runs one method on one scene; returns (record, scores_hw float32).

  The record holds scene, method, params, shape (H, W, B), seconds (wall clock
  of the method call, JIT compilation included), provenance (git revision and
  package versions) and, when the scene has ground truth, every
  lrrjax.metrics.roc3d key.  `cell_provenance` (default: taken now) lets
  run_benchmark record the revision the run started from, not the checkout's
  state when each cell finishes.
  """
  from lrrjax import detectors, metrics  # pylint: disable=import-outside-toplevel
  from lrrjax.errors import LrrjaxError  # pylint: disable=import-outside-toplevel
  params = dict(params or {})
  t0 = time.perf_counter()
  try:
    scores = np.asarray(detectors.run_method(method, scene, **params),
                        dtype=np.float32)
  except LrrjaxError as e:
    raise in_scene(e, scene.name, getattr(scene, "source", "")) from e
  seconds = time.perf_counter() - t0
  if scores.shape != scene.cube.shape[:2]:
    raise SceneError(f"method {method!r} returned scores of shape {scores.shape} "
                     f"for scene {scene.name!r} of shape {scene.cube.shape}")
  rec = {"scene": scene.name, "method": method,
         "params": json.loads(provenance.to_json(params)),
         "shape": [int(v) for v in scene.cube.shape], "seconds": seconds,
         "provenance": cell_provenance or provenance_now()}
  ident = model_identity(method, params)
  if ident is not None:
    rec["model"] = ident
  if scene.gt is not None:
    try:
      rec.update({k: float(v) for k, v in metrics.evaluate(scores, scene.gt).items()})
    except LrrjaxError as e:
      raise in_scene(e, scene.name, getattr(scene, "source", "")) from e
  return rec, scores


def eta(done: int, total: int, t0: float) -> str:
  """``rate cells/min, ETA m:ss`` from ``done`` of ``total`` cells since ``t0``."""
  from lrrjax import progress as progress_mod  # pylint: disable=import-outside-toplevel
  elapsed = max(time.perf_counter() - t0, 1e-9)
  rate = done / elapsed
  eta = (total - done) / rate if rate > 0 else float("nan")
  return (f"{60 * rate:.3g} cells/min, elapsed {progress_mod.fmt_time(elapsed)} "
          f"ETA {progress_mod.fmt_time(eta)}")


def load_cell(cells: pathlib.Path, scene: str, method: str,
               params: dict[str, Any], seed: int | None = None):
  """The finished cell (record, scores), or None when absent or computed with
  other parameters or another model (:func:`model_identity`; then it is stale
  and recomputed)."""
  js = cells / (cell_stem(scene, method, seed) + ".json")
  npy = cells / (cell_stem(scene, method, seed) + ".npy")
  if not (js.exists() and npy.exists()):
    return None
  rec = provenance.read_json(js)
  if rec.get("params", {}) != json.loads(provenance.to_json(params)):
    return None
  ident = model_identity(method, params)
  if ident is not None and rec.get("model") != ident:
    return None
  return rec, np.load(npy)


def save_cell(cells: pathlib.Path, rec: dict, scores: np.ndarray) -> None:
  stem = cell_stem(rec["scene"], rec["method"], rec.get("seed"))
  npy = cells / (stem + ".npy")
  tmp = cells / (stem + ".tmp.npy")
  np.save(tmp, scores.astype(np.float32))
  os.replace(tmp, npy)
  # The .json is written last: its presence marks the cell as finished.
  provenance.write_json(cells / (stem + ".json"), rec)
