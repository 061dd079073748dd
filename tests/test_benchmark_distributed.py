"""`lrrjax benchmark --distributed`: two localhost jax.distributed processes split
the scenes and join their records once (like tests/test_sharding.py)."""

import json
import sys

import numpy as np

import localhost_procs  # tests/ is on sys.path (rootdir conftest)
from lrrjax import benchmark, synthetic

SCRIPT = """
import sys
import jax
try:
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
except Exception:  # newer JAX: gloo is the default CPU collectives
  pass
from lrrjax import cli
sys.exit(cli.main(["benchmark", sys.argv[3], "--out", sys.argv[4], "--methods", "grx",
                   "--distributed", "--coordinator", sys.argv[1], "--num-processes", "2",
                   "--process-id", sys.argv[2], "--progress"]))
"""


def test_two_processes_split_the_scenes_and_join_once(tmp_path):
  data = tmp_path / "data"
  data.mkdir()
  for i, name in enumerate(["a", "b", "c"]):
    s = synthetic.make_scene(16, 14, 12, n_targets=3, seed=10 + i)
    np.savez(data / f"{name}.npz", data=s.cube, map=s.gt.astype(np.uint8))
  port = localhost_procs.free_port()
  out = tmp_path / "out"
  runs = localhost_procs.run_together(
      [[sys.executable, "-c", SCRIPT, f"localhost:{port}", str(i), str(data), str(out)]
       for i in range(2)], localhost_procs.cpu_env(), timeout=300)
  for rc, _, err in runs:
    assert rc == 0, err[-3000:]
  outs = [(o, e) for _, o, e in runs]
  assert "process 0/2: 2 of 3 scenes (a, c)" in outs[0][1]
  assert "process 1/2: 1 of 3 scenes (b)" in outs[1][1]
  assert "benchmark: 3 scenes" in outs[0][0] and "benchmark:" not in outs[1][0]
  got = json.loads((out / "results.json").read_text())
  assert got["processes"] == 2
  assert [(r["scene"], r["method"]) for r in got["records"]] == [
      ("a", "grx"), ("b", "grx"), ("c", "grx")]
  assert (out / "grid.png").exists() and (out / "roc" / "b.png").exists()
  ref = benchmark.run_benchmark(data, ["grx"], tmp_path / "single", progress=False,
                                figures=False)
  assert [r["auc_df"] for r in ref] == [r["auc_df"] for r in got["records"]]
