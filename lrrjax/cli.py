"""The `lrrjax` command: detect, info, train, benchmark, export, suite.

  lrrjax detect SCENE [--method M] [--out DIR] [--key K] [--gt-key G]
                      [--checkpoint WORKDIR] [--seed N] [--set key=value ...]
                      [--tile-rows N] [--memory-budget SIZE] [--progress]
  lrrjax info SCENE [--key K] [--gt-key G]
  lrrjax train SCENE|DATA_DIR --workdir DIR [--key K] [--gt-key G] [--seed N] [--set key=value ...]
                     [--export FILE]
                     [--allow-suite-data]
  lrrjax benchmark DATA_DIR --out DIR [--methods m1,m2,...] [--limit-scenes a,b] [--report-only]
                   [--seeds 0,1,2]
  lrrjax export --out FILE [--checkpoint DIR] [--platforms cpu,cuda,tpu]
  lrrjax export --check FILE
  lrrjax suite make OUT [--data DIR] [--seed S] [--size small|full] [--scenes a,b]
  lrrjax suite verify SUITE_DIR

SCENE is a file (.mat, .npy, .npz, ENVI .hdr) or the word `synthetic`.
detect/info/train take band options: --bands LIST (keep), --bad-bands LIST
(drop; LIST = 0-based indices and inclusive ranges, "0-99,120-149"); constant
(zero-variance) bands are dropped with a one-line notice on stderr unless
--keep-constant-bands. `detect` scores a cube larger than the memory budget
strip by strip (methods with a tiled form, lrrjax.streaming) and writes
scores.npy memory-mapped. Progress (rate, ETA) goes to stderr on a terminal,
or anywhere with --progress.
User errors (lrrjax.errors.LrrjaxError, a missing file) print `error: <message>`
on stderr and exit with status 2, without a traceback.
"""

import argparse
import ast
import inspect
import os
import pathlib
import sys
import time
from typing import Any, Sequence

import numpy as np

from lrrjax import provenance
from lrrjax.errors import ConfigError, LrrjaxError, SceneError

DEFAULT_METHOD = "lrrnet-plus"
DEFAULT_BENCHMARK_METHODS = ("grx", "lrx", "crd", "aed", "lrasr", "lrr-admm", "lrrnet", "lrrnet-plus",
                             "auto-ad", "gt-had")
TRAINED_METHODS = ("lrrnet-plus",)


# ----------------------------------------------------------------------------
# helpers


def parse_value(text: str) -> Any:
  """A --set value: a Python literal (int, float, bool, None, tuple...) or a string."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    low = text.lower()
    if low in ("true", "false"):
      return low == "true"
    if low in ("none", "null"):
      return None
    return text


def parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
  """`["a.b=1", "c=x"]` -> `{"a.b": 1, "c": "x"}`; ConfigError on a malformed item."""
  out = {}
  for item in items or ():
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key or not all(p.isidentifier() for p in key.split(".")):
      raise ConfigError(f"--set expects key=value (dotted keys allowed), got {item!r}")
    out[key] = parse_value(value.strip())
  return out


def apply_overrides(config, overrides: dict[str, Any]):
  """Sets dotted keys on an ml_collections ConfigDict; ConfigError on an unknown key
  or a value of the wrong type."""
  for key, value in overrides.items():
    parts = key.split(".")
    node = config
    for i, p in enumerate(parts[:-1]):
      if p not in node:
        raise ConfigError(f"unknown config key {'.'.join(parts[:i + 1])!r} in {key!r}")
      node = node[p]
    leaf = parts[-1]
    if not hasattr(node, "keys") or leaf not in node:
      raise ConfigError(f"unknown config key {key!r}")
    old = node[leaf]
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
      value = float(value)
    try:
      node[leaf] = value
    except (TypeError, ValueError, KeyError) as e:
      raise ConfigError(f"bad value {value!r} for config key {key!r}: {e}") from e
  return config


def _progress_enabled(args) -> bool:
  return bool(getattr(args, "progress", False)) or sys.stderr.isatty()


def _progress_fn(args):
  """A stderr printer (any arguments) when progress is enabled, else None."""
  if not _progress_enabled(args):
    return None

  def show(*parts, **named):
    if len(parts) == 2 and isinstance(parts[1], dict):  # (step, {name: value})
      parts = (f"step {parts[0]}:",
               *(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                 for k, v in parts[1].items()))
    text = " ".join(str(p) for p in parts)
    if named:
      text += (" " if text else "") + " ".join(f"{k}={v}" for k, v in named.items())
    print(text, file=sys.stderr, flush=True)

  return show


def _notice(text: str) -> None:
  print(text, file=sys.stderr, flush=True)


def band_options(args) -> dict[str, Any]:
  """``bands``, ``bad_bands`` (file band indices or None) and
  ``drop_constant`` from the command-line band options."""
  from lrrjax import io  # pylint: disable=import-outside-toplevel
  bands = getattr(args, "bands", None)
  bad = getattr(args, "bad_bands", None)
  return {"bands": None if bands is None else io.parse_band_list(bands, "--bands"),
          "bad_bands": None if bad is None else io.parse_band_list(bad, "--bad-bands"),
          "drop_constant": not getattr(args, "keep_constant_bands", False)}


def load(scene: str, key: str | None = None, gt_key: str | None = None, *,
         bands=None, bad_bands=None, drop_constant: bool = True):
  """The scene named on the command line: a file path or `synthetic`
  (lrrjax.synthetic.make_scene() with its defaults).

  ``bands``/``bad_bands`` select file bands; constant bands are dropped with a
  one-line notice on stderr naming them (``drop_constant``), else refused."""
  if scene == "synthetic":
    from lrrjax import synthetic  # pylint: disable=import-outside-toplevel
    if key is not None or gt_key is not None:
      raise ConfigError("--key/--gt-key do not apply to the synthetic scene")
    if bands is not None or bad_bands:
      raise ConfigError("--bands/--bad-bands do not apply to the synthetic scene")
    return synthetic.make_scene()
  from lrrjax import io  # pylint: disable=import-outside-toplevel
  path = pathlib.Path(scene)
  if not path.exists():
    raise FileNotFoundError(f"scene file not found: {scene}")
  loaded = io.load_scene(path, key=key, gt_key=gt_key, bands=bands,
                         bad_bands=bad_bands, drop_constant_bands=drop_constant)
  dropped = loaded.metadata.get("dropped_bands")
  if dropped:
    _notice(f"note: {loaded.name}: dropped {len(dropped)} constant band(s) "
            f"{list(dropped)} (zero variance)")
  return loaded


def parse_size(text: str | int | None) -> int | None:
  """``"2048"`` (MiB), ``"512M"``, ``"2G"``, ``"1.5G"`` -> bytes; None stays None."""
  if text is None or isinstance(text, int):
    return None if text is None else int(text) * (1 << 20)
  t = str(text).strip().upper().removesuffix("B").removesuffix("I")
  mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
  unit = mult.get(t[-1:], None)
  try:
    value = float(t[:-1] if unit else t)
  except ValueError:
    raise ConfigError(f"--memory-budget: cannot read {text!r}; use e.g. 2048 "
                      f"(MiB), 512M or 2G") from None
  if not value > 0:
    raise ConfigError(f"--memory-budget must be positive, got {text!r}")
  return int(value * (unit or (1 << 20)))


def _in_scene(err: Exception, name: str, source: str = "") -> Exception:
  """``err`` with the scene named in front of its message (unless it already is)."""
  msg = str(err)
  if name in msg or (source and source in msg):
    return err
  where = f"scene {name!r}" + (f" ({source})" if source else "")
  new = type(err)(f"{where}: {msg}")
  return new


def _check_params(spec, params: dict[str, Any]) -> None:
  """ConfigError when a method's function cannot take one of `params`."""
  try:
    sig = inspect.signature(spec.fn)
  except (TypeError, ValueError):
    return
  if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
    return
  names = [n for n, p in sig.parameters.items()
           if p.kind in (inspect.Parameter.KEYWORD_ONLY,
                         inspect.Parameter.POSITIONAL_OR_KEYWORD)][1:]
  bad = [k for k in params if k not in names]
  if bad:
    raise ConfigError(f"method {spec.name!r} has no parameter(s) {', '.join(bad)}; "
                      f"it takes: {', '.join(names) or '(none)'}")


def _method_spec(name: str):
  from lrrjax import detectors  # pylint: disable=import-outside-toplevel
  known = list(detectors.available_methods())
  if name not in known:
    raise ConfigError(f"unknown method {name!r}; available: {', '.join(known)}")
  return detectors.get_method(name)


# ----------------------------------------------------------------------------
# detect


def detect(scene, method: str = DEFAULT_METHOD, out: str | os.PathLike | None = None,
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
  spec = _method_spec(method)
  if seed is not None:
    params["seed"] = seed
  if checkpoint is not None:
    if method not in TRAINED_METHODS:
      raise ConfigError(f"--checkpoint needs a trained method "
                        f"({', '.join(TRAINED_METHODS)}), not {method!r}")
    if params:
      raise ConfigError("--checkpoint takes its configuration from the checkpoint; "
                        "drop --set/--seed")
    ckpt = pathlib.Path(checkpoint)
    if not ckpt.is_dir():
      raise FileNotFoundError(f"checkpoint folder not found: {ckpt}")
  else:
    _check_params(spec, params)
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
          notice=_notice, progress=meter)
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
    raise _in_scene(e, scene.name, scene.source) from e
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
      raise _in_scene(e, scene.name, scene.source) from e
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
  from lrrjax import io, streaming  # pylint: disable=import-outside-toplevel
  from lrrjax.io import lazy  # pylint: disable=import-outside-toplevel
  opts = band_options(args)
  budget = parse_size(args.memory_budget) or streaming.DEFAULT_BUDGET_MIB * (1 << 20)
  whole = lambda: load(args.scene, args.key, args.gt_key, **opts)  # noqa: E731
  if args.scene == "synthetic" or args.checkpoint is not None:
    scene = whole()
    if args.tile_rows is not None:
      streaming.plan(scene.shape, method, None, budget, args.tile_rows, scene.name)
    return scene, None
  path = pathlib.Path(args.scene)
  if not path.exists():
    raise FileNotFoundError(f"scene file not found: {args.scene}")
  spec = _method_spec(method)
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


def _cmd_detect(args) -> int:
  params = parse_sets(args.set)
  if args.finetune:
    if args.method not in TRAINED_METHODS or args.checkpoint is not None:
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


def _range_txt(a: np.ndarray) -> str:
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
  scene = load(scene_arg, key, gt_key, **(bands or {}))
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


def _cmd_info(args) -> int:
  print(info(args.scene, args.key, args.gt_key, band_options(args)))
  return 0


# ----------------------------------------------------------------------------
# train


def train_folder(folder, workdir: str | os.PathLike, overrides: dict[str, Any] | None = None,
                 seed: int | None = None, progress=None, export=None,
                 allow_suite: bool = False, not_comparable: str | None = None) -> dict[str, Any]:
  """Trains the generalised LRR-Net+ across every scene of `folder` (any band
  counts); writes `workdir/lrrnet_plus.json` and, with `export`, a copy there."""
  from lrrjax.lrr import config as lrr_config  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import cross  # pylint: disable=import-outside-toplevel
  config = lrr_config.get_general_config()
  apply_overrides(config, overrides or {})
  if seed is not None:
    config.seed = int(seed)
  rec = cross.train_from_folder(folder, workdir, config, progress=progress,
                                allow_suite=allow_suite, not_comparable=not_comparable)
  if export is not None:
    export = pathlib.Path(export)
    export.parent.mkdir(parents=True, exist_ok=True)
    tmp = export.with_name(export.name + ".tmp")
    tmp.write_bytes(pathlib.Path(rec["parameters"]).read_bytes())
    tmp.replace(export)
    rec["exported"] = str(export)
  return rec


def train(scene, workdir: str | os.PathLike, overrides: dict[str, Any] | None = None,
          seed: int | None = None, progress=None,
          not_comparable: str | None = None) -> dict[str, Any]:
  """Trains the per-scene LRR-Net+ on one scene, checkpointing in `workdir` (resumes from it).

  `not_comparable` (a reason, e.g. the benchmark suite the scene belongs to)
  is recorded in train.json; such a run's results are not comparable.
  """
  from lrrjax import io  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import config as lrr_config  # pylint: disable=import-outside-toplevel
  config = lrr_config.get_config()
  apply_overrides(config, overrides or {})
  from lrrjax.lrr import train as lrr_train  # pylint: disable=import-outside-toplevel
  if seed is not None:
    config.seed = int(seed)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  x_bn = scene.x_bn(config.normalize)
  kwargs = {"workdir": str(workdir)}
  if progress is not None:
    kwargs["progress"] = progress
  result = lrr_train.train(x_bn, config, **kwargs)
  loss = list(result.history.get("loss", []))
  steps = list(result.history.get("step", []))
  rec = {"scene": scene.name, "workdir": str(workdir),
         "steps": int(steps[-1]) if steps else 0,
         "max_steps": int(config.train.steps), "seconds": float(result.seconds),
         "final_loss": float(loss[-1]) if loss else None}
  if not_comparable:
    rec["not_comparable"] = not_comparable
  provenance.write_json(workdir / "train.json",
                        {**rec, "history": result.history,
                         "provenance": provenance.record(config=config,
                                                         seed=config.seed)})
  return rec


def _train_progress(args):
  """A `train` progress callback ``(step, {name: value})`` printing steps done,
  rate and ETA against ``train.steps`` (None when progress is off)."""
  from lrrjax import progress as progress_mod  # pylint: disable=import-outside-toplevel
  if not _progress_enabled(args):
    return None
  from lrrjax.lrr import config as lrr_config  # pylint: disable=import-outside-toplevel
  config = apply_overrides(lrr_config.get_config(), parse_sets(args.set))
  meter = progress_mod.Progress(max(int(config.train.steps), 1), "steps", "train",
                                enabled=True, interval=0.0)

  def show(step, values=None):
    if isinstance(values, dict):
      note = " ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in values.items())
      meter.update(max(int(step) - meter.done, 0), note=note)
    else:
      _notice(" ".join(str(p) for p in (step, values) if p is not None))

  return show


def _cmd_train(args) -> int:
  from lrrjax import suite  # pylint: disable=import-outside-toplevel
  suite_dir = None
  if args.scene != "synthetic":
    suite_dir = suite.check_not_suite(args.scene, allow=args.allow_suite_data)
  reason = None
  if suite_dir is not None:
    reason = f"trained on benchmark-suite data ({suite_dir}): not comparable"
    print(f"warning: {reason}", file=sys.stderr)
  if args.scene != "synthetic" and pathlib.Path(args.scene).is_dir():
    if args.key is not None or args.gt_key is not None:
      raise ConfigError("--key/--gt-key apply to one scene file, not to a folder")
    rec = train_folder(args.scene, args.workdir, parse_sets(args.set), args.seed,
                       progress=_progress_fn(args), export=args.export,
                       allow_suite=args.allow_suite_data, not_comparable=reason)
    print(f"trained lrrnet-plus across {len(rec['scenes'])} scenes in {rec['seconds']:.1f}s "
          f"-> {rec['parameters']}" + (f" (copied to {rec['exported']})"
                                       if "exported" in rec else ""))
    return 0
  if args.export is not None:
    raise ConfigError("--export applies to cross-scene training (a folder of scenes)")
  scene = load(args.scene, args.key, args.gt_key, **band_options(args))
  rec = train(scene, args.workdir, parse_sets(args.set), args.seed,
              progress=_train_progress(args), not_comparable=reason)
  loss = "" if rec["final_loss"] is None else f" final loss {rec['final_loss']:.6g}"
  print(f"trained lrrnet-plus on {rec['scene']}: {rec['steps']} steps{loss} "
        f"in {rec['seconds']:.2f}s -> {rec['workdir']}")
  return 0


# ----------------------------------------------------------------------------
# benchmark


def _split(text: str | None) -> list[str] | None:
  if text is None:
    return None
  items = [t.strip() for t in text.split(",") if t.strip()]
  if not items:
    raise ConfigError(f"empty list {text!r}")
  return items


def _seed_list(text: str | None) -> list[int] | None:
  """``--seeds 0,1,2`` as ints (None when absent); ConfigError naming the flag."""
  items = _split(text)
  if items is None:
    return None
  try:
    return [int(t) for t in items]
  except ValueError:
    raise ConfigError(f"--seeds must be comma-separated integers, got {text!r}") from None


def _cmd_benchmark(args) -> int:
  from lrrjax import benchmark  # pylint: disable=import-outside-toplevel
  methods = _split(args.methods) or list(DEFAULT_BENCHMARK_METHODS)
  progress = _progress_fn(args) or False
  seeds = _seed_list(args.seeds)
  if args.distributed:
    import jax  # pylint: disable=import-outside-toplevel
    jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
  if args.report_only:
    # Messages about missing cells / figures are always shown.
    records = benchmark.render_report(args.data_dir, methods, args.out,
                                      scenes=_split(args.limit_scenes),
                                      progress=progress or True, seeds=seeds)
  else:
    records = benchmark.run_benchmark(args.data_dir, methods, args.out,
                                      scenes=_split(args.limit_scenes),
                                      progress=progress, distributed=args.distributed,
                                      seeds=seeds)
  if args.distributed:
    import jax  # pylint: disable=import-outside-toplevel
    if jax.process_index() != 0:
      return 0
  aucs = {}
  for r in records:
    if "auc_df" in r:
      aucs.setdefault(r["method"], []).append(r["auc_df"])
  means = " ".join(f"{m}={np.mean(v):.4f}" for m, v in aucs.items())
  n_scenes = len({r["scene"] for r in records})
  print(f"benchmark: {n_scenes} scenes x {len(methods)} methods; mean AUC(D,F) "
        f"{means or '-'} -> {pathlib.Path(args.out) / 'results.md'}")
  return 0


# ----------------------------------------------------------------------------
# export


def _cmd_export(args) -> int:
  """`lrrjax export`: the generalised LRR-Net+ as a jax.export file (lrrjax.export)."""
  from lrrjax import export as ex  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import cross  # pylint: disable=import-outside-toplevel
  if args.check is not None:
    loaded = ex.load_detector(args.check)
    e = loaded.exported
    print(f"{args.check}: {ex.FORMAT} version {loaded.meta.get('version')}, "
          f"{e.in_avals[0].str_short()} -> {e.out_avals[0].str_short()}, "
          f"platforms {','.join(e.platforms)}")
    return 0
  if args.out is None:
    raise ConfigError("lrrjax export needs --out FILE (or --check FILE)")
  platforms = ex.parse_platforms(args.platforms)
  params = ex.parameters_file(args.checkpoint)
  if args.checkpoint is None and not params.exists():
    raise ConfigError(f"no packaged pretrained LRR-Net+ parameters ({params}); pass "
                      f"--checkpoint DIR (the --workdir of a cross-scene `lrrjax train`, "
                      f"holding {cross.WORKDIR_FILE})")
  model, cfg, _ = cross.load_pretrained(params)
  out = ex.write_export(args.out, model, cfg, platforms, source=str(params))
  print(f"wrote {out} ({out.stat().st_size} bytes): scores[h, w] = f(cube float32[h, w, b]), "
        f"platforms {','.join(platforms)}, parameters {params}")
  return 0


def _export_parser(sub) -> None:
  q = sub.add_parser("export", help="write the generalised LRR-Net+ as a jax.export file "
                     "(runs with jax alone)")
  q.add_argument("--out", default=None, metavar="FILE", help="export file to write")
  q.add_argument("--checkpoint", default=None, metavar="DIR",
                 help="workdir of a cross-scene `lrrjax train` (its lrrnet_plus.json) or "
                      "a parameter file (default: the packaged pretrained parameters)")
  q.add_argument("--platforms", default="cpu,cuda,tpu",
                 help="comma-separated lowering platforms (default cpu,cuda,tpu)")
  q.add_argument("--check", default=None, metavar="FILE",
                 help="read an export file and describe it instead of writing one")
  q.set_defaults(func=_cmd_export)


# ----------------------------------------------------------------------------
# suite


def _cmd_suite_make(args) -> int:
  from lrrjax.suite import make  # pylint: disable=import-outside-toplevel
  progress = _progress_fn(args)
  t0 = time.perf_counter()
  manifest = make.make_suite(args.out, args.data, seed=args.seed, size=args.size,
                             scenes=_split(args.scenes), progress=progress)
  seconds = time.perf_counter() - t0
  counts = make.composition(manifest)
  n_t = sum(r["n_targets"] for r in manifest["scenes"])
  print(f"suite {manifest['version']} (seed {manifest['seed']}, size "
        f"{manifest['size']}): {len(manifest['scenes'])} scenes, {n_t} targets "
        f"in {seconds:.1f}s -> {pathlib.Path(args.out) / 'suite.json'}")
  print("targets: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
  for ex in manifest.get("excluded", []):
    print(f"excluded {ex['name']}: {ex['reason']}")
  return 0


def _cmd_suite_verify(args) -> int:
  from lrrjax import suite  # pylint: disable=import-outside-toplevel
  manifest = suite.verify(args.suite_dir)
  print(f"{args.suite_dir}: suite {manifest['version']} with "
        f"{len(manifest['scenes'])} scenes matches its manifest (sha256)")
  return 0


# ----------------------------------------------------------------------------
# argument parsing


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="lrrjax", description="Hyperspectral anomaly detection (LRR-Net+ and "
      "classical detectors) in JAX.")
  sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

  def scene_args(q):
    q.add_argument("scene", metavar="SCENE",
                   help="scene file (.mat/.npy/.npz/ENVI .hdr) or 'synthetic'")
    q.add_argument("--key", default=None, help="variable holding the cube")
    q.add_argument("--gt-key", dest="gt_key", default=None,
                   help="variable holding the ground-truth map")
    q.add_argument("--bands", default=None, metavar="LIST",
                   help="file bands to keep: 0-based indices and inclusive ranges, "
                        "e.g. 0-99,120-149 (default all)")
    q.add_argument("--bad-bands", dest="bad_bands", default=None, metavar="LIST",
                   help="file bands to drop (dead or water-absorption bands), "
                        "e.g. 103-107,150-165")
    q.add_argument("--keep-constant-bands", dest="keep_constant_bands",
                   action="store_true",
                   help="refuse a cube with constant (zero-variance) bands instead "
                        "of dropping them with a notice")

  def progress_arg(q):
    q.add_argument("--progress", action="store_true",
                   help="show progress on stderr even when it is not a terminal")

  q = sub.add_parser("detect", help="score one scene with one method")
  scene_args(q)
  q.add_argument("--method", default=DEFAULT_METHOD,
                 help=f"registry name (default {DEFAULT_METHOD})")
  q.add_argument("--out", default=None, help="output folder (default runs/<scene>-<method>)")
  q.add_argument("--checkpoint", default=None, metavar="WORKDIR",
                 help="use LRR-Net+ parameters trained by `lrrjax train`")
  q.add_argument("--finetune", action="store_true",
                 help="lrrnet-plus: train on this scene (unsupervised) instead of using the "
                      "shipped cross-scene parameters; --set takes LRR config keys")
  q.add_argument("--seed", type=int, default=None, help="method seed (passed as its `seed` parameter)")
  q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="method parameter override (repeatable; dotted keys for LRR config)")
  q.add_argument("--tile-rows", dest="tile_rows", type=int, default=None, metavar="N",
                 help="score N rows at a time (methods with a tiled form; default: "
                      "whole scene when it fits the memory budget, else strips sized "
                      "to it)")
  q.add_argument("--memory-budget", dest="memory_budget", default=None, metavar="SIZE",
                 help="memory for the cube and its working arrays, e.g. 2048 (MiB), "
                      "512M, 2G (default 2G)")
  progress_arg(q)
  q.set_defaults(func=_cmd_detect)

  q = sub.add_parser("info", help="describe a scene file")
  scene_args(q)
  q.set_defaults(func=_cmd_info)

  q = sub.add_parser("train", help="train LRR-Net+ across a folder of scenes (one network "
                     "for every scene) or on one scene, with checkpoints")
  scene_args(q)
  q.add_argument("--export", default=None, metavar="FILE",
                 help="folder training: also write the parameter file here")
  q.add_argument("--workdir", required=True, help="checkpoint folder (resumed if present)")
  q.add_argument("--seed", type=int, default=None)
  q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="LRR config override, e.g. train.steps=50 (repeatable)")
  q.add_argument("--allow-suite-data", dest="allow_suite_data", action="store_true",
                 help="train on a benchmark-suite scene anyway; marks the run not "
                      "comparable (suites are built from real ground truth)")
  progress_arg(q)
  q.set_defaults(func=_cmd_train)

  q = sub.add_parser("benchmark", help="every method on every scene of a folder")
  q.add_argument("data_dir", metavar="DATA_DIR")
  q.add_argument("--methods", default=None,
                 help=f"comma-separated (default {','.join(DEFAULT_BENCHMARK_METHODS)})")
  q.add_argument("--out", required=True, help="output folder (resumed if present)")
  q.add_argument("--limit-scenes", dest="limit_scenes", default=None,
                 help="comma-separated scene names (file stems)")
  q.add_argument("--report-only", dest="report_only", action="store_true",
                 help="run nothing: rewrite results.json, results.md and readme_table.md "
                      "from the cell records in --out (figures only if every score map is there)")
  q.add_argument("--seeds", default=None,
                 help="comma-separated seeds: methods taking a `seed` parameter "
                      "(auto-ad, gt-had, ...) run once per seed, cells "
                      "<scene>__<method>@seed<s>; tables show mean ± std")
  q.add_argument("--distributed", action="store_true",
                 help="split the scenes over jax.distributed processes (results "
                      "joined once, written by process 0)")
  q.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                 help="jax.distributed coordinator (default: from the environment)")
  q.add_argument("--num-processes", dest="num_processes", type=int, default=None)
  q.add_argument("--process-id", dest="process_id", type=int, default=None)
  progress_arg(q)
  q.set_defaults(func=_cmd_benchmark)

  _export_parser(sub)
  q = sub.add_parser("suite", help="the complex-scene benchmark suite (make, verify)")
  ssub = q.add_subparsers(dest="suite_command", required=True, metavar="ACTION")
  r = ssub.add_parser("make", help="write a deterministic suite folder with suite.json")
  r.add_argument("out", metavar="OUT", help="output folder (absent, empty or this suite)")
  r.add_argument("--data", default=None, metavar="DIR",
                 help="source scenes (default LRRJAX_DATA_DIR / ../shared/data)")
  r.add_argument("--seed", type=int, default=0)
  r.add_argument("--size", choices=("small", "full"), default="small")
  r.add_argument("--scenes", default=None,
                 help="comma-separated host scenes (default: every scene that can host)")
  progress_arg(r)
  r.set_defaults(func=_cmd_suite_make)
  r = ssub.add_parser("verify", help="check a suite folder against its manifest")
  r.add_argument("suite_dir", metavar="SUITE_DIR")
  r.set_defaults(func=_cmd_suite_verify)
  return p


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of the `lrrjax` console script; returns the exit status."""
  args = build_parser().parse_args(argv)
  try:
    return args.func(args)
  except (LrrjaxError, FileNotFoundError) as e:
    msg = str(e)
    if isinstance(e, FileNotFoundError) and e.filename and e.filename not in msg:
      msg = f"{msg}: {e.filename}"
    print(f"error: {msg}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
