"""Every method on every scene of a folder: resumable cells, tables and figures.

Layout of `out_dir`:

  cells/<scene>__<method>.json   one record per (scene, method), written as each finishes
  cells/<scene>__<method>.npy    its (H, W) float32 score map
  results.json                   {"records": [...], "provenance": {...}}
  results.md                     AUC(D,F) table (+ Mean and average-rank rows),
                                 AUC(F,tau) / AUC_ODP / AUC_SNPR table, seconds table
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
Delete a cell's files to recompute it. A failing method raises (after the cells
finished before it have been saved).
"""

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


def cell_stem(scene: str, method: str) -> str:
  """File stem of one cell: `<scene>__<method>`."""
  return f"{scene}__{method}"


def _say(progress: bool | Callable[[str], None], msg: str) -> None:
  if callable(progress):
    progress(msg)
  elif progress:
    print(msg, file=sys.stderr, flush=True)


def run_cell(scene, method: str, params: dict[str, Any] | None = None
             ) -> tuple[dict[str, Any], np.ndarray]:
  """Runs one method on one scene; returns (record, scores_hw float32).

  The record holds scene, method, params, shape (H, W, B), seconds (wall clock
  of the method call, JIT compilation included) and, when the scene has ground
  truth, every lrrjax.metrics.roc3d key.
  """
  from lrrjax import detectors, metrics  # pylint: disable=import-outside-toplevel
  params = dict(params or {})
  t0 = time.perf_counter()
  scores = np.asarray(detectors.run_method(method, scene, **params),
                      dtype=np.float32)
  seconds = time.perf_counter() - t0
  if scores.shape != scene.cube.shape[:2]:
    raise SceneError(f"method {method!r} returned scores of shape {scores.shape} "
                     f"for scene {scene.name!r} of shape {scene.cube.shape}")
  rec = {"scene": scene.name, "method": method,
         "params": json.loads(provenance.to_json(params)),
         "shape": [int(v) for v in scene.cube.shape], "seconds": seconds}
  if scene.gt is not None:
    rec.update({k: float(v) for k, v in metrics.evaluate(scores, scene.gt).items()})
  return rec, scores


def _load_cell(cells: pathlib.Path, scene: str, method: str,
               params: dict[str, Any]):
  """The finished cell (record, scores), or None when absent or computed with
  other parameters (then it is stale and recomputed)."""
  js = cells / (cell_stem(scene, method) + ".json")
  npy = cells / (cell_stem(scene, method) + ".npy")
  if not (js.exists() and npy.exists()):
    return None
  rec = provenance.read_json(js)
  if rec.get("params", {}) != json.loads(provenance.to_json(params)):
    return None
  return rec, np.load(npy)


def _save_cell(cells: pathlib.Path, rec: dict, scores: np.ndarray) -> None:
  stem = cell_stem(rec["scene"], rec["method"])
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
                  method_params: dict[str, dict[str, Any]] | None = None
                  ) -> list[dict[str, Any]]:
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

  Returns:
    The records, scene-major in the order of `scenes` / list_scenes, then methods.

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
  total, done = len(names) * len(methods), 0
  for name in names:
    scene = io.load_scene(paths[name], name=name)
    loaded[name] = scene
    for method in methods:
      done += 1
      params = method_params.get(method, {})
      cached = _load_cell(cells, name, method, params)
      if (cached is not None and manifest is not None
          and cached[0].get("scene_sha256", suite_sha[name]) != suite_sha[name]):
        cached = None  # a remade suite scene under the same name
      if cached is not None:
        rec, scores = cached
        tag = "cached"
      else:
        rec, scores = run_cell(scene, method, params)
        if manifest is not None:
          rec["scene_sha256"] = suite_sha[name]
        _save_cell(cells, rec, scores)
        tag = "done"
      records.append(rec)
      all_scores[(name, method)] = scores
      auc = rec.get("auc_df")
      auc_txt = f"AUC(D,F)={auc:.4f}" if auc is not None else "no gt"
      _say(progress, f"[{done}/{total}] {name} {method}: {auc_txt} "
                     f"{rec['seconds']:.2f}s ({tag})")

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
                         **extra, "provenance": provenance.record()})
  (out / "results.md").write_text(render_markdown(records, methods, names) + md_extra,
                                  encoding="utf-8")
  if figures:
    _figures(out, loaded, all_scores, methods, names)
  _say(progress, f"wrote {out / 'results.md'}")
  return records


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
  """(n_scenes, n_methods) float64 array of `key`; NaN where absent."""
  t = np.full((len(scenes), len(methods)), np.nan)
  si = {s: i for i, s in enumerate(scenes)}
  mi = {m: j for j, m in enumerate(methods)}
  for r in records:
    if r["scene"] in si and r["method"] in mi and r.get(key) is not None:
      t[si[r["scene"]], mi[r["method"]]] = float(r[key])
  return t


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


def render_markdown(records: Sequence[dict], methods: Sequence[str],
                    scenes: Sequence[str]) -> str:
  """results.md text: AUC(D,F) table with Mean and average-rank rows, the
  AUC(F,tau) / AUC_ODP / AUC_SNPR table and the seconds table.

  The best AUC(D,F) of each scene is bold (ties all bold). The Mean row is the
  plain mean over scenes with ground truth.
  """
  methods, scenes = list(methods), list(scenes)
  df = auc_table(records, methods, scenes, "auc_df")
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
    rows.append([s] + [(f"**{_fmt(v)}**" if v == best else _fmt(v))
                       for v in df[i]])
  if gt_rows.any():
    mean = _col_mean(df[gt_rows])
    rows.append(["Mean"] + [_fmt(v) for v in mean])
    rows.append(["Average rank"] + [_fmt(v, 2) for v in average_ranks(df[gt_rows])])
  lines += _md_table(["scene"] + methods, rows)
  lines += ["", "Average rank: rank of each method within a scene by AUC(D,F) "
            "(1 = best, ties averaged), averaged over scenes.", ""]

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
