"""Every method on every scene of a folder: resumable cells, tables and figures.

Layout of `out_dir`:

  cells/<scene>__<method>.json   one record per (scene, method), written as each finishes
  cells/<scene>__<method>.npy    its (H, W) float32 score map
  cells/<scene>__<method>@seed<s>.{json,npy}
                                 with ``seeds``: one cell per seed of a method that
                                 takes a ``seed`` parameter (auto-ad, gt-had, ...)
  results.json                   {"records": [...], "provenance": {...}}
  results.md                     AUC(D,F) table (+ Mean and average-rank rows),
                                 AUC(F,tau) / AUC_ODP / AUC_SNPR table, seconds table
  readme_table.md                the AUC(D,F) table in the README's layout
  grid.png                       rows scenes, columns ground truth then methods
  roc/<scene>.png                ROC curves of all methods on one scene
  stratified.png                 (suite folders) Pd vs fill fraction and size per method
  boxplot.png                    background vs anomaly normalised-score boxes,
                                 one panel per scene (scenes with ground truth)

A suite folder (lrrjax.suite: `suite.json` beside the scenes) is verified
against its manifest first (sha256 of every file) and the report adds the
detection rate at FAR 1e-3 / 1e-2 per target size, fill-fraction bin and
context (`stratified` in results.json, a table in results.md). Its cells
record the scene file's sha256 (`scene_sha256`); a cached cell whose sha256
differs from the manifest's (the suite was remade) is recomputed.

Resume: a cell whose .json and .npy both exist, computed with the same method
parameters, is read back, not recomputed.

Report only: :func:`render_report` rewrites results.json, results.md and
readme_table.md from the cell records (.json) alone, e.g. after cells were
added by another run or copied from another machine; the figures are redrawn
only when every score map (.npy) they need is present.
Delete a cell's files to recompute it. A failing method raises (after the cells
finished before it have been saved).

Seeds: with ``seeds=[0, 1, 2]`` (CLI ``--seeds 0,1,2``) every method whose
function takes a ``seed`` parameter runs once per seed (``seed`` added to its
parameters, the record's ``seed`` key set, cell ``<scene>__<method>@seed<s>``);
methods without one run once, in the same cells as a run without seeds, so
cached seedless cells stay valid. The tables then show, for a seeded method,
the mean over its seeds and ``± std`` (sample standard deviation, ddof 1) per
scene; its Mean row is the mean over seeds of the per-seed mean over scenes, ±
the std over seeds of that per-seed mean. Ranks use the per-scene means. The
figures use the first seed's score maps.
"""

import inspect
import json
import os
import pathlib
import sys
import time
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import scipy.stats

from lrrjax import provenance
from lrrjax.errors import ConfigError, SceneError

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


def _variants(method: str, params: dict[str, Any], seeds: list[int] | None
              ) -> list[tuple[int | None, dict[str, Any]]]:
  """(seed, params) of each cell of `method`: one per seed for a seeded method."""
  if seeds is None or not takes_seed(method):
    return [(None, params)]
  if "seed" in params:
    raise ConfigError(f"method {method!r}: give either seeds or a 'seed' parameter, "
                      "not both")
  return [(s, {**params, "seed": s}) for s in seeds]


def _say(progress: bool | Callable[[str], None], msg: str) -> None:
  if callable(progress):
    progress(msg)
  elif progress:
    print(msg, file=sys.stderr, flush=True)


def _cell_provenance() -> dict[str, Any]:
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
    raise _in_scene(e, scene) from e
  seconds = time.perf_counter() - t0
  if scores.shape != scene.cube.shape[:2]:
    raise SceneError(f"method {method!r} returned scores of shape {scores.shape} "
                     f"for scene {scene.name!r} of shape {scene.cube.shape}")
  rec = {"scene": scene.name, "method": method,
         "params": json.loads(provenance.to_json(params)),
         "shape": [int(v) for v in scene.cube.shape], "seconds": seconds,
         "provenance": cell_provenance or _cell_provenance()}
  if scene.gt is not None:
    try:
      rec.update({k: float(v) for k, v in metrics.evaluate(scores, scene.gt).items()})
    except LrrjaxError as e:
      raise _in_scene(e, scene) from e
  return rec, scores


def _in_scene(err: Exception, scene) -> Exception:
  """``err`` with the scene (and its file) named first, unless the message has it."""
  msg, source = str(err), getattr(scene, "source", "")
  if scene.name in msg or (source and source in msg):
    return err
  return type(err)(f"scene {scene.name!r}" + (f" ({source})" if source else "")
                   + f": {msg}")


def _eta(done: int, total: int, t0: float) -> str:
  """``rate cells/min, ETA m:ss`` from ``done`` of ``total`` cells since ``t0``."""
  from lrrjax import progress as progress_mod  # pylint: disable=import-outside-toplevel
  elapsed = max(time.perf_counter() - t0, 1e-9)
  rate = done / elapsed
  eta = (total - done) / rate if rate > 0 else float("nan")
  return (f"{60 * rate:.3g} cells/min, elapsed {progress_mod.fmt_time(elapsed)} "
          f"ETA {progress_mod.fmt_time(eta)}")


def _load_cell(cells: pathlib.Path, scene: str, method: str,
               params: dict[str, Any], seed: int | None = None):
  """The finished cell (record, scores), or None when absent or computed with
  other parameters (then it is stale and recomputed)."""
  js = cells / (cell_stem(scene, method, seed) + ".json")
  npy = cells / (cell_stem(scene, method, seed) + ".npy")
  if not (js.exists() and npy.exists()):
    return None
  rec = provenance.read_json(js)
  if rec.get("params", {}) != json.loads(provenance.to_json(params)):
    return None
  return rec, np.load(npy)


def _save_cell(cells: pathlib.Path, rec: dict, scores: np.ndarray) -> None:
  stem = cell_stem(rec["scene"], rec["method"], rec.get("seed"))
  npy = cells / (stem + ".npy")
  tmp = cells / (stem + ".tmp.npy")
  np.save(tmp, scores.astype(np.float32))
  os.replace(tmp, npy)
  # The .json is written last: its presence marks the cell as finished.
  provenance.write_json(cells / (stem + ".json"), rec)


def run_benchmark(data_dir: str | os.PathLike, methods: Sequence[str],
                  out_dir: str | os.PathLike, scenes: Iterable[str] | None = None,
                  progress: bool | Callable[[str], None] = True,
                  figures: bool = True,
                  method_params: dict[str, dict[str, Any]] | None = None,
                  distributed: bool = False,
                  seeds: Sequence[int] | None = None) -> list[dict[str, Any]]:
  """Runs every method on every scene of `data_dir` and writes the report.

  Args:
    data_dir: folder of scene files (lrrjax.io.list_scenes).
    methods: registry names (lrrjax.detectors.available_methods()).
    out_dir: output folder (layout in the module docstring).
    scenes: optional subset of scene names (file stems) to run, in that order.
    progress: print one line per cell to stderr (or a callable taking the line).
    figures: also write grid.png, roc/<scene>.png and boxplot.png.
    method_params: optional method -> keyword overrides for run_method (the
      same for every scene). A cached cell computed with other parameters is
      recomputed.
    distributed: split the scenes over the ``jax.distributed`` processes
      (already initialised): process ``p`` of ``P`` runs scenes ``p, p + P,
      ...`` of the list and saves their cells; the records are then joined
      once through a collective (``process_allgather`` of their JSON), and
      process 0 alone writes results.json / results.md and, from the cell
      files (a shared folder), the figures. Every process returns all records.
    seeds: optional seeds; each method taking a ``seed`` parameter runs once
      per seed (see the module docstring), the others once.

  Returns:
    The records, scene-major in the order of `scenes` / list_scenes, then
    methods, then seeds.

  Raises:
    ConfigError: unknown method or scene name, or no methods.
    SceneError / FileNotFoundError: unreadable data_dir or scene.
  """
  from lrrjax import detectors, io  # pylint: disable=import-outside-toplevel
  data_dir = pathlib.Path(data_dir)
  if not data_dir.is_dir():
    raise FileNotFoundError(f"data folder not found: {data_dir}")
  methods = list(methods)
  if not methods:
    raise ConfigError("no methods given")
  known = list(detectors.available_methods())
  unknown = [m for m in methods if m not in known]
  if unknown:
    raise ConfigError(f"unknown method(s) {', '.join(unknown)}; "
                      f"available: {', '.join(known)}")
  if len(set(methods)) != len(methods):
    raise ConfigError(f"duplicate methods in {methods}")
  method_params = dict(method_params or {})
  seeds = check_seeds(seeds)
  variants = {m: _variants(m, method_params.get(m, {}), seeds) for m in methods}
  extra = [m for m in method_params if m not in methods]
  if extra:
    raise ConfigError(f"method_params for method(s) not run: {', '.join(extra)}")
  paths = {p.stem: p for p in io.list_scenes(data_dir)}
  if not paths:
    raise SceneError(f"no loadable scenes in {data_dir}")
  if scenes is None:
    names = list(paths)
  else:
    names = list(scenes)
    missing = [n for n in names if n not in paths]
    if missing:
      raise ConfigError(f"scene(s) {', '.join(missing)} not in {data_dir}; "
                        f"available: {', '.join(paths)}")

  from lrrjax import suite  # pylint: disable=import-outside-toplevel
  manifest = suite.verify(data_dir) if suite.is_suite(data_dir) else None
  suite_sha = {r["file"].rsplit(".", 1)[0]: r["sha256"]
               for r in (manifest or {"scenes": []})["scenes"]}

  out = pathlib.Path(out_dir)
  cells = out / "cells"
  cells.mkdir(parents=True, exist_ok=True)
  records, all_scores, loaded = [], {}, {}
  started = _cell_provenance()
  rank, world = _process_rank() if distributed else (0, 1)
  mine = names[rank::world]
  total, done = len(mine) * sum(len(v) for v in variants.values()), 0
  t_start = time.perf_counter()
  if world > 1:
    _say(progress, f"process {rank}/{world}: {len(mine)} of {len(names)} scenes "
                   f"({', '.join(mine) or 'none'})")
  for name in mine:
    scene = io.load_scene(paths[name], name=name)
    loaded[name] = scene
    for method, seed, params in ((m, s, p) for m in methods for s, p in variants[m]):
      done += 1
      cached = _load_cell(cells, name, method, params, seed)
      if (cached is not None and manifest is not None
          and cached[0].get("scene_sha256", suite_sha[name]) != suite_sha[name]):
        cached = None  # a remade suite scene under the same name
      if cached is not None:
        rec, scores = cached
        tag = "cached"
      else:
        rec, scores = run_cell(scene, method, params, cell_provenance=started)
        if seed is not None:
          rec["seed"] = seed
        if manifest is not None:
          rec["scene_sha256"] = suite_sha[name]
        _save_cell(cells, rec, scores)
        tag = "done"
      records.append(rec)
      if seed is None or seed == seeds[0]:
        all_scores[(name, method)] = scores
      auc = rec.get("auc_df")
      auc_txt = f"AUC(D,F)={auc:.4f}" if auc is not None else "no gt"
      tag_m = method if seed is None else f"{method} seed={seed}"
      _say(progress, f"[{done}/{total}] {name} {tag_m}: {auc_txt} "
                     f"{rec['seconds']:.2f}s ({tag}); {_eta(done, total, t_start)}")

  if world > 1:
    records = _join_records(records, names, methods)
    if rank != 0:
      return records
    missing = [n for n in names if n not in loaded]
    for n in missing:
      loaded[n] = io.load_scene(paths[n], name=n)
      for m in methods:
        npy = cells / (cell_stem(n, m, variants[m][0][0]) + ".npy")
        if npy.exists():
          all_scores[(n, m)] = np.load(npy)
    if figures and len(all_scores) < len(names) * len(methods):
      _say(progress, "figures skipped: the other processes' cells are not in "
                     f"{cells} (no shared folder)")
      figures = False

  extra, md_extra = {}, ""
  if manifest is not None:
    from lrrjax.suite import stratified  # pylint: disable=import-outside-toplevel
    strat = stratified.stratified_records(
        manifest, all_scores, {n: loaded[n].gt for n in names}, methods, names)
    extra = {"stratified": strat,
             "suite": {k: manifest.get(k) for k in ("version", "seed", "size")}}
    md_extra = "\n" + stratified.render_markdown(strat, methods, manifest)
    if figures:
      stratified.save_figure(out / "stratified.png", strat, methods)
  provenance.write_json(out / "results.json",
                        {"records": records, "methods": methods, "scenes": names,
                         "processes": world, "seeds": seeds, **extra,
                         "provenance": provenance.record()})
  _write_tables(out, records, methods, names, md_extra)
  if figures:
    _figures(out, loaded, all_scores, methods, names)
  _say(progress, f"wrote {out / 'results.md'}")
  return records


def _write_tables(out: pathlib.Path, records, methods, names, md_extra: str = "") -> None:
  (out / "results.md").write_text(render_markdown(records, methods, names) + md_extra,
                                  encoding="utf-8")
  (out / "readme_table.md").write_text(render_readme_table(records, methods, names),
                                       encoding="utf-8")


def render_report(data_dir: str | os.PathLike | None, methods: Sequence[str],
                  out_dir: str | os.PathLike, scenes: Iterable[str] | None = None,
                  progress: bool | Callable[[str], None] = True,
                  figures: bool = True,
                  seeds: Sequence[int] | None = None) -> list[dict[str, Any]]:
  """Rewrites the report of `out_dir` from its cell records alone; runs nothing.

  Reads `cells/<scene>__<method>.json` for every requested (scene, method) and
  writes results.json (records, methods, scenes, provenance of this rendering),
  results.md and readme_table.md.  A missing cell record is reported (progress)
  and left out (its table entries read "—").  The figures (grid.png,
  roc/<scene>.png, boxplot.png) need every cell's score map (.npy) and the
  scenes' ground truth from `data_dir`: when any map is missing, or `data_dir`
  is None, they are not redrawn (existing files are left as they were) and
  progress says so.

  Args:
    data_dir: the scene folder (scene order, ground truth for figures), or None.
    methods: method names, in column order.
    out_dir: a benchmark output folder with `cells/`.
    scenes: optional scene names, in row order (default: `data_dir`'s scenes,
      or when it is None the scenes found in `cells/`, sorted).
    progress: print messages to stderr (or a callable taking each line).
    figures: try to redraw the figures.
    seeds: read the per-seed cells ``<scene>__<method>@seed<s>`` of methods
      taking a ``seed`` parameter (as written by ``run_benchmark(seeds=...)``).

  Returns:
    The records found, scene-major then method (then seed).

  Raises:
    ConfigError: no methods, duplicates, or no cell record at all.
    FileNotFoundError: `out_dir/cells` or `data_dir` does not exist.
  """
  from lrrjax import io  # pylint: disable=import-outside-toplevel
  methods = list(methods)
  if not methods:
    raise ConfigError("no methods given")
  if len(set(methods)) != len(methods):
    raise ConfigError(f"duplicate methods in {methods}")
  seeds = check_seeds(seeds)
  cell_seeds = {m: [v[0] for v in _variants(m, {}, seeds)] for m in methods}
  out = pathlib.Path(out_dir)
  cells = out / "cells"
  if not cells.is_dir():
    raise FileNotFoundError(f"no cell records: {cells} does not exist")
  paths = {}
  if data_dir is not None:
    if not pathlib.Path(data_dir).is_dir():
      raise FileNotFoundError(f"data folder not found: {data_dir}")
    paths = {p.stem: p for p in io.list_scenes(data_dir)}
  if scenes is not None:
    names = list(scenes)
  elif paths:
    names = list(paths)
  else:
    stems = [p.name[:-len(".json")] for p in cells.glob("*__*.json")]
    names = sorted({st.rsplit("__", 1)[0] for st in stems
                    if st.rsplit("__", 1)[1].split("@seed", 1)[0] in methods})
  records, missing = [], []
  for name in names:
    for method in methods:
      for seed in cell_seeds[method]:
        js = cells / (cell_stem(name, method, seed) + ".json")
        if js.exists():
          records.append(provenance.read_json(js))
        else:
          missing.append(cell_stem(name, method, seed))
  if not records:
    raise ConfigError(f"no cell records for methods {', '.join(methods)} in {cells}")
  if missing:
    _say(progress, f"{len(missing)} cell record(s) missing, left out of the tables: "
                   f"{', '.join(missing)}")
  names = [n for n in names if any(r["scene"] == n for r in records)]
  provenance.write_json(out / "results.json",
                        {"records": records, "methods": methods, "scenes": names,
                         "seeds": seeds, "rendered_from_cells": True,
                         "provenance": provenance.record()})
  _write_tables(out, records, methods, names)
  _say(progress, f"wrote {out / 'results.md'} and {out / 'readme_table.md'} "
                 f"from {len(records)} cell records")
  if figures:
    first = [r for r in records if r.get("seed") in (None, cell_seeds[r["method"]][0])]
    maps = [cells / (cell_stem(r["scene"], r["method"], r.get("seed")) + ".npy")
            for r in first]
    absent = [m.name for m in maps if not m.exists()]
    if missing or absent or not paths:
      why = ("no data folder for the ground truth" if not paths else
             f"{len(absent) + len(missing)} score maps missing"
             + (f" (e.g. {(absent or missing)[0]})" if absent or missing else ""))
      _say(progress, f"figures not redrawn: {why}; existing grid.png, roc/ and "
                     "boxplot.png are left as they were")
    else:
      loaded = {n: io.load_scene(paths[n], name=n) for n in names}
      all_scores = {(r["scene"], r["method"]): np.load(m) for r, m in zip(first, maps)}
      _figures(out, loaded, all_scores, methods, names)
      _say(progress, f"figures redrawn in {out}")
  return records


def _process_rank() -> tuple[int, int]:
  import jax  # pylint: disable=import-outside-toplevel
  return jax.process_index(), jax.process_count()


def _join_records(records: list[dict], names: Sequence[str],
                  methods: Sequence[str]) -> list[dict]:
  """All processes' records (a collective every process must call), scene-major
  in the order of ``names``, then ``methods``."""
  from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
  payload = np.frombuffer(provenance.to_json(records).encode("utf-8"), np.uint8)
  sizes = np.asarray(multihost_utils.process_allgather(
      np.array([payload.size], np.int32))).reshape(-1)
  buf = np.zeros(int(sizes.max()), np.int32)
  buf[:payload.size] = payload
  gathered = np.asarray(multihost_utils.process_allgather(buf))
  joined = []
  for row, n in zip(gathered.reshape(len(sizes), -1), sizes):
    joined += json.loads(row[:n].astype(np.uint8).tobytes().decode("utf-8"))
  order = {(s, m): i for i, (s, m) in enumerate(
      (s, m) for s in names for m in methods)}
  return sorted(joined, key=lambda r: (order[(r["scene"], r["method"])],
                                       -1 if r.get("seed") is None else r["seed"]))


def _figures(out, loaded, all_scores, methods, names) -> None:
  from lrrjax import metrics, plots  # pylint: disable=import-outside-toplevel
  gts = {n: loaded[n].gt for n in names if loaded[n].gt is not None}
  plots.save_grid(out / "grid.png", names, methods, all_scores,
                  gts=gts if gts else None)
  with_gt = [n for n in names if n in gts]
  (out / "roc").mkdir(exist_ok=True)
  for n in with_gt:
    curves = {}
    for m in methods:
      pf, pd, _ = metrics.roc_curve(all_scores[(n, m)].ravel(), gts[n].ravel())
      curves[m] = (pf, pd)
    plots.save_roc(out / "roc" / f"{n}.png", curves, title=n)
  if with_gt:
    plots.save_boxplot(out / "boxplot.png", with_gt, methods, all_scores, gts)


def auc_table(records: Sequence[dict], methods: Sequence[str],
              scenes: Sequence[str], key: str) -> np.ndarray:
  """(n_scenes, n_methods) float64 array of `key`; NaN where absent.

  Several records of one (scene, method) (one per seed) give their mean.
  """
  total = np.zeros((len(scenes), len(methods)))
  count = np.zeros((len(scenes), len(methods)))
  si = {s: i for i, s in enumerate(scenes)}
  mi = {m: j for j, m in enumerate(methods)}
  for r in records:
    if r["scene"] in si and r["method"] in mi and r.get(key) is not None:
      total[si[r["scene"]], mi[r["method"]]] += float(r[key])
      count[si[r["scene"]], mi[r["method"]]] += 1
  return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def seed_tables(records: Sequence[dict], method: str, scenes: Sequence[str],
                key: str) -> dict[int, np.ndarray]:
  """seed -> (n_scenes,) values of `key` for `method`'s seeded records (NaN where
  absent); empty when the method has no seeded record."""
  si = {s: i for i, s in enumerate(scenes)}
  out: dict[int, np.ndarray] = {}
  for r in records:
    seed = r.get("seed")
    if r["method"] != method or seed is None or r["scene"] not in si:
      continue
    t = out.setdefault(int(seed), np.full(len(scenes), np.nan))
    if r.get(key) is not None:
      t[si[r["scene"]]] = float(r[key])
  return dict(sorted(out.items()))


def seed_std_table(records: Sequence[dict], methods: Sequence[str],
                   scenes: Sequence[str], key: str) -> np.ndarray:
  """(n_scenes, n_methods) sample std (ddof 1) of `key` over each method's
  seeds; NaN where fewer than two seeds have a value."""
  t = np.full((len(scenes), len(methods)), np.nan)
  for j, m in enumerate(methods):
    per = seed_tables(records, m, scenes, key)
    if len(per) < 2:
      continue
    stack = np.stack(list(per.values()))               # (n_seeds, n_scenes)
    ok = ~np.isnan(stack)
    for i in range(len(scenes)):
      v = stack[ok[:, i], i]
      if v.size >= 2:
        t[i, j] = float(np.std(v, ddof=1))
  return t


def _seeded_mean_row(records, methods, scenes, rows_mask, mean_row):
  """Mean-row strings: ``mean ± std`` over seeds of the per-seed scene mean for
  seeded methods (every seed with all rows), else the plain mean."""
  out = []
  rows = [s for s, keep in zip(scenes, rows_mask) if keep]
  for j, m in enumerate(methods):
    per = seed_tables(records, m, rows, "auc_df")
    means = [float(np.mean(v)) for v in per.values() if not np.isnan(v).any()]
    if len(means) >= 2 and len(means) == len(per):
      out.append(f"{np.mean(means):.4f} ± {np.std(means, ddof=1):.4f}")
    else:
      out.append(_fmt(mean_row[j]))
  return out


def _fmt_pm(v: float, sd: float) -> str:
  return _fmt(v) if np.isnan(sd) or np.isnan(v) else f"{v:.4f} ± {sd:.4f}"


def _seed_note(records: Sequence[dict], methods: Sequence[str]) -> list[str]:
  seeded = {m: sorted({int(r["seed"]) for r in records
                       if r["method"] == m and r.get("seed") is not None})
            for m in methods}
  seeded = {m: v for m, v in seeded.items() if v}
  if not seeded:
    return []
  txt = "; ".join(f"{m}: seeds {', '.join(map(str, v))}" for m, v in seeded.items())
  return [f"Seeded methods ({txt}): mean over seeds ± sample std (ddof 1); "
          "their Mean row is the mean ± std over seeds of the per-seed mean "
          "over scenes; ranks and the other tables use the per-scene means.", ""]


def average_ranks(table: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
  """Mean over rows of each column's rank within its row (1 = best, ties averaged).

  Rows containing NaN are left out.
  """
  rows = table[~np.isnan(table).any(axis=1)]
  if rows.size == 0:
    return np.full(table.shape[1], np.nan)
  signed = -rows if higher_is_better else rows
  ranks = scipy.stats.rankdata(signed, method="average", axis=1)
  return ranks.mean(axis=0)


def _col_mean(t: np.ndarray) -> np.ndarray:
  """Column means ignoring NaN; NaN for an all-NaN column (no warning)."""
  n = np.sum(~np.isnan(t), axis=0)
  s = np.nansum(t, axis=0)
  return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def _col_sum(t: np.ndarray) -> np.ndarray:
  n = np.sum(~np.isnan(t), axis=0)
  return np.where(n > 0, np.nansum(t, axis=0), np.nan)


def _fmt(v: float, digits: int = 4) -> str:
  return "—" if np.isnan(v) else f"{v:.{digits}f}"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
  lines += ["| " + " | ".join(r) + " |" for r in rows]
  return lines


def render_readme_table(records: Sequence[dict], methods: Sequence[str],
                        scenes: Sequence[str]) -> str:
  """The AUC(D,F) table in README.md's layout: scenes with ground truth, best
  of each scene in bold, then a bold `mean` row and an `average rank` row."""
  methods, scenes = list(methods), list(scenes)
  df = auc_table(records, methods, scenes, "auc_df")
  sd = seed_std_table(records, methods, scenes, "auc_df")
  gt_rows = ~np.isnan(df).all(axis=1)
  rows = []
  for i, s in enumerate(scenes):
    if gt_rows[i]:
      best = np.max(df[i][~np.isnan(df[i])])
      rows.append([s] + [(f"**{_fmt_pm(v, e)}**" if v == best else _fmt_pm(v, e))
                         for v, e in zip(df[i], sd[i])])
  if gt_rows.any():
    rows.append(["**mean**"] + _seeded_mean_row(records, methods, scenes, gt_rows,
                                                _col_mean(df[gt_rows])))
    rows.append(["average rank"] + [_fmt(v, 2) for v in average_ranks(df[gt_rows])])
  return "\n".join(_md_table(["scene"] + methods, rows)) + "\n"


def render_markdown(records: Sequence[dict], methods: Sequence[str],
                    scenes: Sequence[str]) -> str:
  """results.md text: AUC(D,F) table with Mean and average-rank rows, the
  AUC(F,tau) / AUC_ODP / AUC_SNPR table and the seconds table.

  The best AUC(D,F) of each scene is bold (ties all bold). The Mean row is the
  plain mean over scenes with ground truth.
  """
  methods, scenes = list(methods), list(scenes)
  df = auc_table(records, methods, scenes, "auc_df")
  sd = seed_std_table(records, methods, scenes, "auc_df")
  gt_rows = ~np.isnan(df).all(axis=1)
  lines = ["# Benchmark results", "",
           f"{len(scenes)} scenes x {len(methods)} methods. Scores are computed "
           "with each method's default parameters (one setting for all scenes); "
           "ground truth is used only to score.", "",
           "## AUC(D,F) (area under the ROC curve, higher is better)", ""]
  rows = []
  for i, s in enumerate(scenes):
    if not gt_rows[i]:
      continue
    best = np.max(df[i][~np.isnan(df[i])])
    rows.append([s] + [(f"**{_fmt_pm(v, e)}**" if v == best else _fmt_pm(v, e))
                       for v, e in zip(df[i], sd[i])])
  if gt_rows.any():
    mean = _col_mean(df[gt_rows])
    rows.append(["Mean"] + _seeded_mean_row(records, methods, scenes, gt_rows, mean))
    rows.append(["Average rank"] + [_fmt(v, 2) for v in average_ranks(df[gt_rows])])
  lines += _md_table(["scene"] + methods, rows)
  lines += ["", "Average rank: rank of each method within a scene by AUC(D,F) "
            "(1 = best, ties averaged), averaged over scenes.", ""]
  lines += _seed_note(records, methods)

  ft = auc_table(records, methods, scenes, "auc_ft")
  odp = auc_table(records, methods, scenes, "auc_odp")
  snpr = auc_table(records, methods, scenes, "auc_snpr")
  lines += ["## AUC(F,tau) / AUC_ODP / AUC_SNPR", "",
            "AUC(F,tau): background false-alarm area (lower is better); "
            "AUC_ODP = AUC(D,F) + AUC(D,tau) - AUC(F,tau) (higher is better); "
            "AUC_SNPR = AUC(D,tau) / AUC(F,tau) (higher is better).", ""]
  rows = []
  for i, s in enumerate(scenes):
    if gt_rows[i]:
      rows.append([s] + [f"{_fmt(ft[i, j])} / {_fmt(odp[i, j])} / "
                         f"{_fmt(snpr[i, j], 2)}" for j in range(len(methods))])
  if gt_rows.any():
    m_ft, m_odp, m_snpr = (_col_mean(t[gt_rows]) for t in (ft, odp, snpr))
    rows.append(["Mean"] + [f"{_fmt(m_ft[j])} / {_fmt(m_odp[j])} / "
                            f"{_fmt(m_snpr[j], 2)}" for j in range(len(methods))])
  lines += _md_table(["scene"] + methods, rows)
  lines += [""]

  sec = auc_table(records, methods, scenes, "seconds")
  lines += ["## Seconds (wall clock per scene, JIT compilation included)", ""]
  rows = [[s] + [_fmt(v, 2) for v in sec[i]] for i, s in enumerate(scenes)]
  rows.append(["Total"] + [_fmt(v, 2) for v in _col_sum(sec)])
  lines += _md_table(["scene"] + methods, rows)
  lines += [""]
  return "\n".join(lines)
