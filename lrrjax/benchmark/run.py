"""Running the benchmark (resumable cells, jax.distributed scene split) and
rendering its report from cell records."""

import json
import os
import pathlib
import time
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from lrrjax import provenance
from lrrjax.benchmark.cells import (cell_stem, check_seeds, eta, load_cell, provenance_now,
                                    run_cell, save_cell, say, seed_variants)
from lrrjax.benchmark.tables import render_markdown, render_readme_table
from lrrjax.errors import ConfigError, SceneError


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
  variants = {m: seed_variants(m, method_params.get(m, {}), seeds) for m in methods}
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
  started = provenance_now()
  rank, world = _process_rank() if distributed else (0, 1)
  mine = names[rank::world]
  total, done = len(mine) * sum(len(v) for v in variants.values()), 0
  t_start = time.perf_counter()
  if world > 1:
    say(progress, f"process {rank}/{world}: {len(mine)} of {len(names)} scenes "
                   f"({', '.join(mine) or 'none'})")
  for name in mine:
    scene = io.load_scene(paths[name], name=name)
    loaded[name] = scene
    for method, seed, params in ((m, s, p) for m in methods for s, p in variants[m]):
      done += 1
      cached = load_cell(cells, name, method, params, seed)
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
        save_cell(cells, rec, scores)
        tag = "done"
      records.append(rec)
      if seed is None or seed == seeds[0]:
        all_scores[(name, method)] = scores
      auc = rec.get("auc_df")
      auc_txt = f"AUC(D,F)={auc:.4f}" if auc is not None else "no gt"
      tag_m = method if seed is None else f"{method} seed={seed}"
      say(progress, f"[{done}/{total}] {name} {tag_m}: {auc_txt} "
                     f"{rec['seconds']:.2f}s ({tag}); {eta(done, total, t_start)}")

  if world > 1:
    records = join_records(records, names, methods)
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
      say(progress, "figures skipped: the other processes' cells are not in "
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
  say(progress, f"wrote {out / 'results.md'}")
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
  cell_seeds = {m: [v[0] for v in seed_variants(m, {}, seeds)] for m in methods}
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
    say(progress, f"{len(missing)} cell record(s) missing, left out of the tables: "
                   f"{', '.join(missing)}")
  names = [n for n in names if any(r["scene"] == n for r in records)]
  provenance.write_json(out / "results.json",
                        {"records": records, "methods": methods, "scenes": names,
                         "seeds": seeds, "rendered_from_cells": True,
                         "provenance": provenance.record()})
  _write_tables(out, records, methods, names)
  say(progress, f"wrote {out / 'results.md'} and {out / 'readme_table.md'} "
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
      say(progress, f"figures not redrawn: {why}; existing grid.png, roc/ and "
                     "boxplot.png are left as they were")
    else:
      loaded = {n: io.load_scene(paths[n], name=n) for n in names}
      all_scores = {(r["scene"], r["method"]): np.load(m) for r, m in zip(first, maps)}
      _figures(out, loaded, all_scores, methods, names)
      say(progress, f"figures redrawn in {out}")
  return records


def _process_rank() -> tuple[int, int]:
  import jax  # pylint: disable=import-outside-toplevel
  return jax.process_index(), jax.process_count()


def join_records(records: list[dict], names: Sequence[str],
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
