"""`experiments/main.py --distributed`: two localhost jax.distributed processes
split a folder of scenes and process 0 writes the joined summary once (like
tests/test_benchmark_distributed.py)."""

import json
import os
import pathlib
import sys

import numpy as np
import pytest

import localhost_procs  # tests/ is on sys.path (rootdir conftest)
from lrrjax import experiment, synthetic

REPO = pathlib.Path(__file__).resolve().parents[1]
MAIN = REPO / "experiments" / "main.py"
CONFIG = REPO / "experiments" / "configs" / "default.py"
NAMES = ("a", "b", "c")


def _scene_folder(root: pathlib.Path) -> pathlib.Path:
  data = root / "data"
  data.mkdir()
  for i, name in enumerate(NAMES):
    s = synthetic.make_scene(16, 14, 12, n_targets=3, seed=10 + i)
    np.savez(data / f"{name}.npz", data=s.cube, map=s.gt.astype(np.uint8))
  return data


def _run_two(tmp_path: pathlib.Path, work: pathlib.Path, *overrides: str) -> list:
  """Runs experiments/main.py --distributed as processes 0 and 1; their (stdout, stderr)."""
  port = localhost_procs.free_port()
  # gloo: the CPU collectives of the join (already the default in recent JAX).
  env = localhost_procs.cpu_env(
      JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo",
      PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
  runs = localhost_procs.run_together(
      [[sys.executable, str(MAIN), f"--config={CONFIG}", *overrides,
        "--config.save_figures=false", f"--workdir={work}",
        "--distributed", f"--coordinator=localhost:{port}", "--num_processes=2",
        f"--process_id={i}"] for i in range(2)], env, timeout=240, cwd=tmp_path)
  for rc, _, err in runs:
    assert rc == 0, err[-3000:]
  return [(out, err) for _, out, err in runs]


def test_two_processes_split_the_scenes_and_summarise_once(tmp_path):
  data = _scene_folder(tmp_path)
  work = tmp_path / "work"
  outs = _run_two(tmp_path, work, "--config.method=grx", f"--config.scene={data}")
  err0, err1 = outs[0][1], outs[1][1]
  assert "process 0/2: 2 of 3 scenes (a, c)" in err0
  assert "process 1/2: 1 of 3 scenes (b)" in err1
  assert "3 scenes split over 2 processes" in err0
  # Each process logs (and ran) its own scenes only.
  assert "a: grx AUC(D,F)=" in err0 and "c: grx AUC(D,F)=" in err0
  assert "b: grx AUC(D,F)=" not in err0
  assert "b: grx AUC(D,F)=" in err1
  assert "a: grx AUC(D,F)=" not in err1 and "c: grx AUC(D,F)=" not in err1
  assert "mean AUC(D,F) over 3 scene(s)" in err0 and "mean AUC(D,F)" not in err1

  summary = json.loads((work / "summary.json").read_text())
  assert summary["processes"] == 2
  assert [r["scene"] for r in summary["records"]] == list(NAMES)
  for name in NAMES:
    assert (work / name / "scores.npy").exists() and (work / name / "metrics.json").exists()
  prov = json.loads((work / "provenance.json").read_text())
  assert prov["processes"] == 2 and prov["split_scenes"] is True
  assert prov["jax"]["process_index"] == 0 and prov["jax"]["process_count"] == 2
  assert json.loads((work / "config.json").read_text())["method"] == "grx"

  # The same AUCs as one process running every scene.
  config = experiment.default_config()
  config.method, config.scene, config.save_figures = "grx", str(data), False
  single = experiment.train_and_evaluate(config, tmp_path / "single")
  assert [r["scene"] for r in single["records"]] == list(NAMES)
  assert [r["auc_df"] for r in summary["records"]] == pytest.approx(
      [r["auc_df"] for r in single["records"]], abs=1e-12)
  assert summary["mean_auc_df"] == pytest.approx(single["mean_auc_df"], abs=1e-12)
  for name in NAMES:
    np.testing.assert_array_equal(np.load(work / name / "scores.npy"),
                                  np.load(tmp_path / "single" / name / "scores.npy"))


def test_two_processes_train_their_scenes_with_own_checkpoints(tmp_path):
  """LRR-Net+ per scene: each process trains and checkpoints its scenes alone
  (lrrjax.lrr.local_checkpoint); every checkpoint restores in one process and
  scores its scene as in scores.npy."""
  from lrrjax import io  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import train  # pylint: disable=import-outside-toplevel
  data = _scene_folder(tmp_path)
  work = tmp_path / "work"
  outs = _run_two(tmp_path, work, "--config.method=lrrnet-plus", f"--config.scene={data}",
                  "--config.lrr.model.stages=2", "--config.lrr.train.steps=2",
                  "--config.lrr.train.checkpoint_every=1")
  assert "process 1/2: 1 of 3 scenes (b)" in outs[1][1]
  assert "b: training lrrnet-plus" in outs[1][1] and "b: training" not in outs[0][1]
  summary = json.loads((work / "summary.json").read_text())
  assert [r["scene"] for r in summary["records"]] == list(NAMES)
  for name in NAMES:
    model, cfg = train.restore(work / name)
    scene = io.load_scene(data / f"{name}.npz")
    scores = train.detect(model, scene.x_bn(cfg.normalize)).reshape(16, 14)
    np.testing.assert_allclose(scores, np.load(work / name / "scores.npy"),
                               rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------ split plan --


@pytest.mark.parametrize("world, n, method, dp, flag, split", [
    (1, 3, "grx", False, True, False),          # one process: as before
    (2, 1, "grx", False, True, False),          # one scene
    (2, 3, "grx", False, True, True),
    (2, 3, "grx", True, True, True),            # data_parallel only matters when training
    (2, 3, "lrrnet-plus", False, True, True),
    (2, 3, "lrrnet-plus", True, True, False),   # data-parallel training: all on every scene
    (2, 3, "lrrnet", True, True, False),
    (2, 3, "grx", False, False, False),         # config.split_scenes = False
])
def test_split_plan(world, n, method, dp, flag, split):
  config = experiment.default_config()
  config.method, config.lrr.train.data_parallel, config.split_scenes = method, dp, flag
  got, reason = experiment.split_plan(config, n, world)
  assert got is split
  assert bool(reason) is (world > 1)
  if dp and method != "grx" and n > 1 and flag:
    assert "data_parallel" in reason


def test_share_and_scene_paths(tmp_path):
  assert [experiment.share(list("abcde"), r, 2) for r in range(2)] == [
      ["a", "c", "e"], ["b", "d"]]
  assert experiment.share(["a"], 1, 2) == []
  data = _scene_folder(tmp_path)
  config = experiment.default_config()
  assert experiment.scene_paths(config) is None  # "synthetic"
  config.scene = str(data)
  paths = experiment.scene_paths(config)
  assert [experiment.scene_name(p) for p in paths] == list(NAMES)
  config.scene = str(paths[0])
  assert experiment.scene_paths(config) is None  # one file


def test_process_local_checkpoint_roundtrip(tmp_path):
  """The checkpoint one process of a split run writes alone reads back with the
  process-local and the ordinary (single-process) manager."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import train  # pylint: disable=import-outside-toplevel
  params = {"a": jnp.arange(3.0), "b": {"c": jnp.int32(4)}}
  opt = {"n": jnp.ones((2, 2))}
  mngr = train.checkpoint_manager(tmp_path, process_local=True)
  train.save_checkpoint(mngr, 1, params, opt, {"x": 1}, process_local=True)
  mngr.wait_until_finished()
  step, p2, o2, meta = train.restore_latest(mngr, params, opt, process_local=True)
  mngr.close()
  assert step == 1 and meta == {"x": 1}
  np.testing.assert_array_equal(p2["a"], [0.0, 1.0, 2.0])
  assert int(p2["b"]["c"]) == 4 and np.asarray(o2["n"]).sum() == 4
  mngr = train.checkpoint_manager(tmp_path)
  step, p3, _, _ = train.restore_latest(mngr, params, opt)
  mngr.close()
  np.testing.assert_array_equal(p3["a"], [0.0, 1.0, 2.0])
