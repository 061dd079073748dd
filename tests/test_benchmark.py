"""Benchmark runner: records against an sklearn oracle, resume, markdown tables."""

import json
import os
import re

import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import roc_auc_score

from lrrjax import benchmark, detectors, synthetic
from lrrjax.errors import ConfigError

METHODS = ["grx", "lrx"]
# Small windows so LRX is fast on 24 x 24 scenes (one setting for both scenes).
PARAMS = {"lrx": {"inner": 3, "outer": 7}}


def _save_scene(folder, name, seed, h=24, w=20):
  s = synthetic.make_scene(height=h, width=w, bands=24, n_targets=4, seed=seed)
  np.savez(folder / f"{name}.npz", data=s.cube, map=s.gt.astype(np.uint8))
  return s


@pytest.fixture(scope="module")
def scenes_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp("scenes")
  _save_scene(d, "alpha", seed=1)
  _save_scene(d, "beta", seed=2, h=20, w=24)
  return d


@pytest.fixture(scope="module")
def bench(scenes_dir, tmp_path_factory):
  out = tmp_path_factory.mktemp("bench")
  lines = []
  records = benchmark.run_benchmark(scenes_dir, METHODS, out, progress=lines.append,
                                    method_params=PARAMS)
  return out, records, lines


def _table_rows(md, heading):
  """Rows of the first markdown table after `heading` as lists of cells."""
  part = md.split(heading, 1)[1]
  rows = []
  started = False
  for line in part.splitlines():
    if line.startswith("|"):
      started = True
      rows.append([c.strip().strip("*") for c in line.strip("|").split("|")])
    elif started:
      break
  return rows[0], rows[2:]  # header, body (skip the ---| line)


def test_records_match_sklearn_oracle(bench, scenes_dir):
  out, records, lines = bench
  assert [(r["scene"], r["method"]) for r in records] == [
      ("alpha", "grx"), ("alpha", "lrx"), ("beta", "grx"), ("beta", "lrx")]
  assert len(lines) >= 4 and all("(done)" in l for l in lines[:4])
  for r in records:
    data = np.load(scenes_dir / f"{r['scene']}.npz")
    scores = np.load(out / "cells" / f"{r['scene']}__{r['method']}.npy")
    assert scores.shape == data["map"].shape and scores.dtype == np.float32
    assert r["auc_df"] == pytest.approx(
        roc_auc_score(data["map"].ravel(), scores.ravel()), abs=1e-12)
    for k in benchmark.ROC3D_KEYS:
      assert np.isfinite(r[k]), k
    assert r["shape"] == list(data["data"].shape)
    assert r["seconds"] > 0
    assert r["params"] == PARAMS.get(r["method"], {})
    assert set(r["provenance"]) == {"git", "versions"} and "revision" in r["provenance"]["git"]
  # grx is a registry method: the saved scores are what run_method returns.
  from lrrjax import io
  s = io.load_scene(scenes_dir / "alpha.npz")
  np.testing.assert_array_equal(
      np.load(out / "cells" / "alpha__grx.npy"), detectors.run_method("grx", s))


def test_output_files(bench):
  out, records, _ = bench
  for name in ("results.json", "results.md", "grid.png", "boxplot.png",
               "roc/alpha.png", "roc/beta.png"):
    assert (out / name).stat().st_size > 0, name
  res = json.loads((out / "results.json").read_text())
  assert res["records"] == json.loads(json.dumps(records))
  assert res["provenance"]["versions"]["jax"]
  assert res["methods"] == METHODS and res["scenes"] == ["alpha", "beta"]


def test_markdown_mean_and_rank_rows(bench):
  out, records, _ = bench
  md = (out / "results.md").read_text()
  header, body = _table_rows(md, "## AUC(D,F)")
  assert header == ["scene"] + METHODS
  rows = {r[0]: r[1:] for r in body}
  assert set(rows) == {"alpha", "beta", "Mean", "Average rank"}
  for j, m in enumerate(METHODS):
    vals = [r["auc_df"] for r in records if r["method"] == m]
    assert float(rows["Mean"][j]) == pytest.approx(np.mean(vals), abs=6e-5)
    for r in records:
      if r["method"] == m:
        assert float(rows[r["scene"]][j]) == pytest.approx(r["auc_df"], abs=6e-5)
  table = np.array([[next(r["auc_df"] for r in records
                          if r["scene"] == s and r["method"] == m)
                     for m in METHODS] for s in ("alpha", "beta")])
  ranks = scipy.stats.rankdata(-table, axis=1).mean(axis=0)
  assert [float(v) for v in rows["Average rank"]] == pytest.approx(ranks, abs=6e-3)
  # The second and third tables are there, with a cell per method.
  header2, body2 = _table_rows(md, "## AUC(F,tau) / AUC_ODP / AUC_SNPR")
  assert header2 == header and [r[0] for r in body2] == ["alpha", "beta", "Mean"]
  ft = next(r["auc_ft"] for r in records if r["scene"] == "beta" and r["method"] == "lrx")
  assert float(body2[1][2].split("/")[0]) == pytest.approx(ft, abs=6e-5)
  _, body3 = _table_rows(md, "## Seconds")
  assert [r[0] for r in body3] == ["alpha", "beta", "Total"]


def test_resume_recomputes_nothing(bench, scenes_dir, monkeypatch):
  out, records, _ = bench
  cells = sorted((out / "cells").iterdir())
  mtimes = {p.name: p.stat().st_mtime_ns for p in cells}
  calls = []
  real = detectors.run_method

  def counting(name, scene, **kw):
    calls.append((scene.name, name))
    return real(name, scene, **kw)

  monkeypatch.setattr(detectors, "run_method", counting)
  lines = []
  again = benchmark.run_benchmark(scenes_dir, METHODS, out, progress=lines.append,
                                  method_params=PARAMS, figures=False)
  assert calls == []
  assert again == json.loads(json.dumps(records))
  assert all("(cached)" in l for l in lines[:4])
  assert {p.name: p.stat().st_mtime_ns for p in sorted((out / "cells").iterdir())} == mtimes

  # A deleted cell, and a cell whose parameters changed, are recomputed; no others.
  os.remove(out / "cells" / "beta__grx.json")
  benchmark.run_benchmark(scenes_dir, METHODS, out, progress=False, figures=False,
                          method_params={"lrx": {"inner": 3, "outer": 9}})
  assert sorted(calls) == [("alpha", "lrx"), ("beta", "grx"), ("beta", "lrx")]


def test_subset_and_errors(scenes_dir, tmp_path):
  recs = benchmark.run_benchmark(scenes_dir, ["grx"], tmp_path / "b", scenes=["beta"],
                                 progress=False, figures=False)
  assert [(r["scene"], r["method"]) for r in recs] == [("beta", "grx")]
  with pytest.raises(ConfigError, match="nope"):
    benchmark.run_benchmark(scenes_dir, ["grx", "nope"], tmp_path / "c", progress=False)
  assert not (tmp_path / "c").exists()  # nothing started
  with pytest.raises(ConfigError, match="gamma"):
    benchmark.run_benchmark(scenes_dir, ["grx"], tmp_path / "c", scenes=["gamma"],
                            progress=False)
  with pytest.raises(FileNotFoundError):
    benchmark.run_benchmark(tmp_path / "missing", ["grx"], tmp_path / "c", progress=False)


def test_failure_keeps_finished_cells(scenes_dir, tmp_path):
  # LRX with an inner window larger than the outer one is invalid: the run fails
  # loudly on the first lrx cell, after the grx cell of that scene was saved.
  with pytest.raises(Exception) as info:
    benchmark.run_benchmark(scenes_dir, ["grx", "lrx"], tmp_path, progress=False,
                            method_params={"lrx": {"inner": 9, "outer": 3}})
  assert not isinstance(info.value, AssertionError)
  names = sorted(p.name for p in (tmp_path / "cells").iterdir())
  assert names == ["alpha__grx.json", "alpha__grx.npy"]
  assert not (tmp_path / "results.md").exists()


def test_average_ranks_ties():
  t = np.array([[0.9, 0.9, 0.8], [0.7, 0.8, 0.9], [np.nan, 0.5, 0.6]])
  np.testing.assert_allclose(benchmark.average_ranks(t), [2.25, 1.75, 2.0])
  np.testing.assert_allclose(benchmark.average_ranks(t[:2], higher_is_better=False),
                             [1.75, 2.25, 2.0])


def test_render_markdown_without_gt_and_missing_cells():
  recs = [{"scene": "a", "method": "m1", "seconds": 1.0, "auc_df": 0.9, "auc_ft": 0.1,
           "auc_odp": 1.2, "auc_snpr": 5.0},
          {"scene": "b", "method": "m1", "seconds": 2.0}]
  md = benchmark.render_markdown(recs, ["m1", "m2"], ["a", "b"])
  _, body = _table_rows(md, "## AUC(D,F)")
  assert body[0] == ["a", "0.9000", "—"]
  assert [r[0] for r in body] == ["a", "Mean", "Average rank"]
  assert body[2] == ["Average rank", "—", "—"]  # no scene has both methods
  _, sec = _table_rows(md, "## Seconds")
  assert sec[-1] == ["Total", "3.00", "—"]
  assert re.search(r"\| b \| 2\.00 \| — \|", md)


def test_report_only_rerenders_from_cell_records(bench, scenes_dir, tmp_path, monkeypatch):
  import shutil
  from lrrjax import cli
  out, _, _ = bench
  copy = tmp_path / "copy"
  shutil.copytree(out, copy)
  # The cells as they are now (test_resume_recomputes_nothing may have redone some).
  lrx_params = json.loads((copy / "cells" / "alpha__lrx.json").read_text())["params"]
  benchmark.run_benchmark(scenes_dir, METHODS, copy, progress=False, figures=False,
                          method_params={"lrx": lrx_params})  # all cached: rewrites results.md
  records = [json.loads((copy / "cells" / f"{s}__{m}.json").read_text())
             for s in ("alpha", "beta") for m in METHODS]
  md_before = (copy / "results.md").read_text()
  for p in (copy / "cells").glob("*.npy"):
    p.unlink()  # as in a fresh clone: records only
  (copy / "results.md").unlink()
  monkeypatch.setattr(detectors, "run_method", lambda *a, **k: pytest.fail("ran a method"))
  lines = []
  again = benchmark.render_report(scenes_dir, METHODS, copy, progress=lines.append)
  assert again == records
  md_after = (copy / "results.md").read_text()
  assert md_after.split("## Seconds")[0] == md_before.split("## Seconds")[0]
  assert any("figures not redrawn" in l and "score maps missing" in l for l in lines)
  readme = (copy / "readme_table.md").read_text().splitlines()
  assert readme[0] == "| scene | grx | lrx |" and readme[-2].startswith("| **mean** |")
  lrx_alpha = next(r["auc_df"] for r in records if (r["scene"], r["method"]) == ("alpha", "lrx"))
  assert f"{lrx_alpha:.4f}" in next(l for l in readme if l.startswith("| alpha |"))
  res = json.loads((copy / "results.json").read_text())
  assert res["rendered_from_cells"] and res["methods"] == METHODS

  # A method without cell records: said, and shown as "—"; figures with all maps are redrawn.
  lines.clear()
  benchmark.render_report(scenes_dir, ["grx", "lrx", "crd"], copy, progress=lines.append)
  assert any("missing" in l and "alpha__crd" in l for l in lines)
  assert "| alpha |" in (copy / "readme_table.md").read_text() and "—" in (
      copy / "readme_table.md").read_text()
  (copy / "grid.png").unlink()
  for r in records:
    shutil.copy(out / "cells" / f"{r['scene']}__{r['method']}.npy", copy / "cells")
    assert (out / "cells" / f"{r['scene']}__{r['method']}.json").read_text() == (
        copy / "cells" / f"{r['scene']}__{r['method']}.json").read_text()
  lines.clear()
  benchmark.render_report(scenes_dir, METHODS, copy, progress=lines.append)
  assert (copy / "grid.png").stat().st_size > 0 and any("redrawn in" in l for l in lines)

  # The CLI flag runs nothing either.
  assert cli.main(["benchmark", str(scenes_dir), "--out", str(copy), "--methods", "grx,lrx",
                   "--report-only"]) == 0
  with pytest.raises(FileNotFoundError):
    benchmark.render_report(scenes_dir, METHODS, tmp_path / "none")


def _toy_seeded(scene, seed: int = 0):
  """GRX plus seed-dependent noise: a cheap stand-in for a stochastic method."""
  from lrrjax.detectors import rx
  s = np.asarray(rx.global_rx(scene.cube), np.float64)
  rng = np.random.default_rng(seed)
  return (s + 0.5 * s.std() * rng.standard_normal(s.shape)).astype(np.float32)


def test_seeds_run_seeded_methods_once_per_seed(scenes_dir, tmp_path, monkeypatch):
  from lrrjax import cli
  detectors.available_methods()
  monkeypatch.setitem(detectors._METHODS, "toy-seeded", detectors.MethodSpec(
      "toy-seeded", _toy_seeded, "test-only seeded method"))
  out = tmp_path / "seeded"
  # A seedless run first: its grx cells must be reused by the seeded run.
  benchmark.run_benchmark(scenes_dir, ["grx"], out, progress=False, figures=False)
  lines = []
  recs = benchmark.run_benchmark(scenes_dir, ["grx", "toy-seeded"], out, seeds=[0, 1, 2],
                                 progress=lines.append, figures=False)
  assert [(r["scene"], r["method"], r.get("seed")) for r in recs] == [
      (s, m, seed) for s in ("alpha", "beta")
      for m, seed in (("grx", None), ("toy-seeded", 0), ("toy-seeded", 1), ("toy-seeded", 2))]
  assert sum("(cached)" in l for l in lines) == 2          # the two grx cells
  names = sorted(p.name for p in (out / "cells").glob("*.json"))
  assert names == sorted([f"{s}__grx.json" for s in ("alpha", "beta")] + [
      f"{s}__toy-seeded@seed{k}.json" for s in ("alpha", "beta") for k in range(3)])
  for r in recs:
    if r["method"] == "toy-seeded":
      assert r["params"] == {"seed": r["seed"]}
  aucs = {s: [r["auc_df"] for r in recs if r["scene"] == s and r["method"] == "toy-seeded"]
          for s in ("alpha", "beta")}
  assert len(set(aucs["alpha"])) == 3                      # the seeds differ
  md = (out / "results.md").read_text()
  header, body = _table_rows(md, "## AUC(D,F)")
  assert header == ["scene", "grx", "toy-seeded"]
  rows = {r[0]: r[1:] for r in body}
  for s in ("alpha", "beta"):
    assert "±" not in rows[s][0]
    mean, sd = (float(v) for v in rows[s][1].split("±"))
    assert mean == pytest.approx(np.mean(aucs[s]), abs=6e-5)
    assert sd == pytest.approx(np.std(aucs[s], ddof=1), abs=6e-5)
  per_seed = [np.mean([aucs[s][k] for s in aucs]) for k in range(3)]
  mean, sd = (float(v) for v in rows["Mean"][1].split("±"))
  assert mean == pytest.approx(np.mean(per_seed), abs=6e-5)
  assert sd == pytest.approx(np.std(per_seed, ddof=1), abs=6e-5)
  assert "Seeded methods (toy-seeded: seeds 0, 1, 2)" in md
  assert "±" in (out / "readme_table.md").read_text()
  # Report-only with the same seeds reproduces the tables; the CLI takes --seeds.
  benchmark.render_report(scenes_dir, ["grx", "toy-seeded"], out, seeds=[0, 1, 2],
                          progress=False, figures=False)
  assert (out / "results.md").read_text().split("## Seconds")[0] == md.split("## Seconds")[0]
  assert cli.main(["benchmark", str(scenes_dir), "--out", str(out), "--methods",
                   "grx,toy-seeded", "--seeds", "0,1,2", "--report-only"]) == 0
  assert cli.main(["benchmark", str(scenes_dir), "--out", str(out), "--seeds", "a"]) == 2
  with pytest.raises(ConfigError, match="duplicate seeds"):
    benchmark.run_benchmark(scenes_dir, ["grx"], out, seeds=[1, 1], progress=False)
  with pytest.raises(ConfigError, match="either seeds or a 'seed'"):
    benchmark.run_benchmark(scenes_dir, ["toy-seeded"], out, seeds=[0], progress=False,
                            method_params={"toy-seeded": {"seed": 3}})
  assert benchmark.takes_seed("gt-had") and benchmark.takes_seed("auto-ad")
  assert not benchmark.takes_seed("grx")


def test_lrrnet_plus_cells_are_stale_after_a_new_parameter_file(scenes_dir, tmp_path):
  """A cell of the pretrained LRR-Net+ remembers its parameter file (version,
  sha256): a retrained file makes it stale, the same file reuses it."""
  from lrrjax.benchmark import cells as cells_mod
  from lrrjax.lrr import cross
  pre = tmp_path / "p.json"
  pre.write_bytes(cross.DEFAULT_PRETRAINED.read_bytes())
  params = {"pretrained": str(pre)}
  out = tmp_path / "bench"
  benchmark.run_benchmark(scenes_dir, ["lrrnet-plus"], out, method_params={"lrrnet-plus": params},
                          scenes=["alpha"], progress=False, figures=False)
  rec = json.loads((out / "cells" / "alpha__lrrnet-plus.json").read_text())
  assert rec["model"]["version"] == cross.PRETRAINED_VERSION
  assert cells_mod.load_cell(out / "cells", "alpha", "lrrnet-plus", params) is not None
  obj = json.loads(pre.read_text())
  obj["final_loss"] = None  # another file, same format
  pre.write_text(json.dumps(obj))
  assert cells_mod.load_cell(out / "cells", "alpha", "lrrnet-plus", params) is None
  assert cells_mod.model_identity("grx", {}) is None
  assert cells_mod.model_identity("lrrnet-plus", {"finetune": True}) is None
