"""`lrrjax detect` (one method on one scene, whole or strip by strip) and
`lrrjax info` (what a scene file holds)."""

import os
import pathlib
import time
from typing import Any

import numpy as np

from lrrjax import provenance
from lrrjax.cli import common
from lrrjax.errors import ConfigError, LrrjaxError, SceneError, in_scene


def detect(scene, method: str = common.DEFAULT_METHOD, out: str | os.PathLike | None = None,
           checkpoint: str | os.PathLike | None = None, seed: int | None = None,
           params: dict[str, Any] | None = None, *, tile_rows: int | None = None,
           drop_constant: bool = True, progress: bool = False) -> dict[str, Any]:
  """Runs one method on one scene and writes scores.npy, detection.png,
  detect.json (the record: shape, seconds, pixels/s, bands, strips) and, with
  ground truth, metrics.json and roc.png. Returns the summary record.

  ``scene`` is a :class:`lrrjax.io.Scene` (scored whole) or a
  :class:`lrrjax.io.lazy.LazyCube` (scored strip by strip with the method's
  tiled form, ``tile_rows`` rows at a time; scores.npy memory-mapped and the
  figures drawn from a strided preview). Errors raised while scoring name
  the scene."""
  from lrrjax import detectors, metrics, plots  # pylint: disable=import-outside-toplevel
  from lrrjax import progress as progress_mod  # pylint: disable=import-outside-toplevel
  params = dict(params or {})
  spec = common.method_spec(method)
  if seed is not None:
    params["seed"] = seed
  if checkpoint is not None:
    if method not in common.TRAINED_METHODS:
      raise ConfigError(f"--checkpoint needs a trained method "
                        f"({', '.join(common.TRAINED_METHODS)}), not {method!r}")
    if params:
      raise ConfigError("--checkpoint takes its configuration from the checkpoint; "
                        "drop --set/--seed")
    ckpt = pathlib.Path(checkpoint)
    if not ckpt.is_dir():
      raise FileNotFoundError(f"checkpoint folder not found: {ckpt}")
  else:
    common.check_params(spec, params)
  tiled = not hasattr(scene, "x_bn")  # a LazyCube
  if tiled and (checkpoint is not None or spec.tiled is None):
    raise ConfigError(f"method {method!r} cannot score scene {scene.name!r} strip by strip")
  out = pathlib.Path(out if out is not None else f"runs/{scene.name}-{method}")
  out.mkdir(parents=True, exist_ok=True)
  h, w, b = (int(v) for v in scene.shape)
  meter = progress_mod.Progress(
      2 * h * w if tiled else h * w, "px", f"detect {method} on {scene.name}",
      enabled=progress_mod.enabled(progress))

  t0 = time.perf_counter()
  tile_info = None
  try:
    if tiled:
      from lrrjax import streaming  # pylint: disable=import-outside-toplevel
      full = detectors.resolve_params(spec, params)  # a method's own seed stays in
      scores, stats, tile_info = streaming.detect_tiled(
          scene, spec, full, out, tile_rows,
          seed=int(params.get("seed", 0) or 0), drop_constant_bands=drop_constant,
          notice=common.notice, progress=meter)
      b = stats.bands
    else:
      if checkpoint is not None:
        from lrrjax.lrr import methods as lrr_methods  # pylint: disable=import-outside-toplevel
        scores = lrr_methods.lrrnet_plus_from_checkpoint(scene, ckpt)
      else:
        scores = detectors.run_method(method, scene, **params)
      scores = np.asarray(scores, dtype=np.float32)
      meter.update(h * w)
  except LrrjaxError as e:
    meter.close()
    raise in_scene(e, scene.name, scene.source) from e
  seconds = time.perf_counter() - t0
  if scores.shape != (h, w):
    raise SceneError(f"method {method!r} returned shape {scores.shape}, "
                     f"expected {(h, w)} for scene {scene.name!r}")

  gt = scene.gt
  if tiled:
    step = stats.preview_step
    plots.save_detection(out / "detection.png", stats.preview_hwb,
                         np.asarray(scores[::step, ::step]),
                         None if gt is None else gt[::step, ::step],
                         title=f"{scene.name}: {method} (every {step}th pixel)"
                         if step > 1 else f"{scene.name}: {method}")
  else:
    np.save(out / "scores.npy", scores)
    plots.save_detection(out / "detection.png", scene, scores,
                         title=f"{scene.name}: {method}")
  meta = getattr(scene, "metadata", {}) or {}
  rec = {"method": method, "scene": scene.name, "source": scene.source,
         "shape": [h, w, b], "seconds": seconds,
         "params": params, "checkpoint": None if checkpoint is None else str(checkpoint),
         "out": str(out), "pixels_per_second": h * w / max(seconds, 1e-12),
         "bands": meta.get("bands"),
         "dropped_bands": (tile_info or {}).get("dropped_bands")
         or meta.get("dropped_bands") or [],
         "tiled": None if tile_info is None else
         {k: v for k, v in tile_info.items() if k != "dropped_bands"}}
  provenance.write_json(out / "detect.json",
                        {**rec, "provenance": provenance.record(seed=seed)})
  if gt is not None:
    try:
      rec.update({k: float(v) for k, v in metrics.evaluate(scores, gt).items()})
    except LrrjaxError as e:
      raise in_scene(e, scene.name, scene.source) from e
    pf, pd, _ = metrics.roc_curve(np.asarray(scores).ravel(), gt.ravel())
    plots.save_roc(out / "roc.png", {method: (pf, pd)}, title=scene.name)
    provenance.write_json(out / "metrics.json",
                          {**rec, "provenance": provenance.record(seed=seed)})
  return rec


def summary_line(rec: dict[str, Any]) -> str:
  shape = "x".join(str(v) for v in rec["shape"])
  auc = (f" AUC(D,F)={rec['auc_df']:.4f} AUC_ODP={rec['auc_odp']:.4f}"
         if "auc_df" in rec else " (no ground truth)")
  return (f"{rec['method']} on {rec['scene']} [{shape}]:{auc} "
          f"in {rec['seconds']:.2f}s -> {rec['out']}")


def open_for_detect(args, method: str):
  """``(scene_or_lazy_cube, tile_rows)`` for `detect`: a LazyCube when the
  method has a tiled form and the cube needs strips (lrrjax.streaming.plan),
  else the whole Scene."""
  from lrrjax import streaming  # pylint: disable=import-outside-toplevel
  from lrrjax.io import lazy  # pylint: disable=import-outside-toplevel
  opts = common.band_options(args)
  budget = common.parse_size(args.memory_budget) or streaming.DEFAULT_BUDGET_MIB * (1 << 20)
  whole = lambda: common.load(args.scene, args.key, args.gt_key, **opts)  # noqa: E731
  if args.scene == "synthetic" or args.checkpoint is not None:
    scene = whole()
    if args.tile_rows is not None:
      streaming.plan(scene.shape, method, None, budget, args.tile_rows, scene.name)
    return scene, None
  path = pathlib.Path(args.scene)
  if not path.exists():
    raise FileNotFoundError(f"scene file not found: {args.scene}")
  spec = common.method_spec(method)
  cube = lazy.open_cube(path, args.key, args.gt_key, bands=opts["bands"],
                        bad_bands=opts["bad_bands"])
  if cube is None:  # MATLAB v5 / .npz: loaded whole
    found = lazy.whole_cube_shape(path, args.key)
    if found is not None:
      shape, fmt = found
      nbytes = int(np.prod(shape)) * 4
      if nbytes > budget:
        raise SceneError(
            f"{path}: the cube {'x'.join(map(str, shape))} needs "
            f"{lazy.fmt_gib(nbytes)} as float32, more than the memory budget "
            f"{lazy.fmt_gib(budget)}, and a {fmt} file can only be read whole; "
            f"re-save it as MATLAB v7.3 (HDF5), .npy or ENVI to stream it, or "
            f"raise --memory-budget")
    if args.tile_rows is not None:
      raise ConfigError(f"{path}: --tile-rows needs a file that can be read in "
                        f"strips (.npy, ENVI, MATLAB v7.3), not a {path.suffix} file")
    scene = whole()
    chosen = streaming.plan(scene.shape, method, spec.tiled, budget, None,
                            f"scene {scene.name!r} ({path})",
                            resident_bytes=int(np.asarray(scene.cube).nbytes))
    if chosen.mode == "whole":
      return scene, None
    # loaded whole (the format cannot stream), scored in strips: the method's
    # whole-scene path would need more than the budget
    return lazy.array_cube(scene.cube, name=scene.name, source=path, gt=scene.gt,
                           metadata=getattr(scene, "metadata", None)), chosen.tile_rows
  try:
    chosen = streaming.plan(cube.shape, method, spec.tiled, budget,
                            args.tile_rows, f"scene {cube.name!r} ({path})")
  except BaseException:
    cube.close()
    raise
  if chosen.mode == "whole":
    cube.close()
    return whole(), None
  return cube, chosen.tile_rows


def cmd_detect(args) -> int:
  params = common.parse_sets(args.set)
  if args.finetune:
    if args.method not in common.TRAINED_METHODS or args.checkpoint is not None:
      raise ConfigError("--finetune applies to --method lrrnet-plus without --checkpoint")
    params["finetune"] = True
  scene, tile_rows = open_for_detect(args, args.method)
  try:
    rec = detect(scene, args.method, args.out, args.checkpoint, args.seed,
                 params, tile_rows=tile_rows,
                 drop_constant=not args.keep_constant_bands, progress=args.progress)
  finally:
    if hasattr(scene, "close"):
      scene.close()
  print(summary_line(rec))
  return 0


# ----------------------------------------------------------------------------
# info


def range_txt(a: np.ndarray) -> str:
  if a.size == 0 or not np.issubdtype(a.dtype, np.number):
    return ""
  return f" range [{np.min(a):.6g}, {np.max(a):.6g}]"


def info(scene_arg: str, key: str | None = None, gt_key: str | None = None,
         bands: dict[str, Any] | None = None) -> str:
  """Text description of a scene file (or the synthetic scene): file variables with
  shapes, dtypes and ranges, then the loaded cube and its ground truth."""
  lines = []
  if scene_arg != "synthetic":
    from lrrjax import io  # pylint: disable=import-outside-toplevel
    path = pathlib.Path(scene_arg)
    if not path.exists():
      raise FileNotFoundError(f"scene file not found: {scene_arg}")
    meta = io.inspect_file(path)
    lines.append(f"file: {path} ({meta.get('format')})")
    lines.append("keys:")
    for row in meta.get("arrays", []):
      shape = "x".join(str(v) for v in row["shape"]) or "scalar"
      rng = ("" if row.get("min") is None
             else f" range [{row['min']:.6g}, {row['max']:.6g}]")
      lines.append(f"  {row['key']}: {shape} {row['dtype']}{rng}")
    if meta.get("error"):
      lines.append(f"problem: {meta['error']}")
  scene = common.load(scene_arg, key, gt_key, **(bands or {}))
  cube = scene.cube
  keys = ""
  if scene.metadata.get("cube_key"):
    keys = f" (cube key {scene.metadata['cube_key']!r}, gt key " \
           f"{scene.metadata.get('gt_key')!r})"
  lines.append(f"scene: {scene.name}{keys}")
  lines.append(f"shape: {cube.shape[0]} x {cube.shape[1]} x {cube.shape[2]} "
               f"(H x W x B), loaded as {cube.dtype}")
  orig = scene.metadata.get("dtype")
  lines.append(f"dtype in file: {orig}" if orig else "dtype in file: (generated)")
  lines.append(f"value range: [{float(cube.min()):.6g}, {float(cube.max()):.6g}]")
  if scene.metadata.get("bands") is not None:
    lines.append(f"bands kept (file indices): {scene.metadata['bands']}")
  dropped = scene.metadata.get("dropped_bands")
  if dropped:
    lines.append(f"dropped constant bands: {list(dropped)}")
  if scene.gt is None:
    lines.append("anomaly pixels: no ground truth")
  else:
    n = int(np.count_nonzero(scene.gt))
    lines.append(f"anomaly pixels: {n} of {scene.gt.size} "
                 f"({100.0 * n / scene.gt.size:.2f}%)")
  return "\n".join(lines)


def cmd_info(args) -> int:
  print(info(args.scene, args.key, args.gt_key, common.band_options(args)))
  return 0
