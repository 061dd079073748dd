"""`lrrjax export`: the generalised LRR-Net+ as a jax.export artifact (lrrjax.export)."""

import json
import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

from lrrjax import cli, io, synthetic
from lrrjax import export as ex
from lrrjax.lrr import cross, general
from lrrjax.lrr.config import get_general_config
from quantised import assert_scores_match  # tests/ is on sys.path

# Two raw cubes with different H, W and B (offset and scaled: normalisation runs inside).
SHAPES = ((18, 22, 12), (25, 16, 31))

# What a pipeline runs: jax and numpy only; importing lrrjax would fail.
CONSUMER = textwrap.dedent("""
    import sys
    sys.modules["lrrjax"] = None   # any import of lrrjax raises ImportError
    import jax, numpy as np
    _, _, blob = open(sys.argv[1], "rb").read().split(b"\\n", 2)
    detector = jax.export.deserialize(bytearray(blob))
    for i, path in enumerate(sys.argv[2:]):
      scores = np.asarray(detector.call(np.load(path).astype("float32")))
      np.save(path + ".scores.npy", scores)
    print(",".join(detector.platforms))
""")


def _cfg():
  cfg = get_general_config()
  cfg.net.stages = 2
  cfg.net.n_clusters = 3
  cfg.net.per_cluster = 2
  return cfg


def _model(cfg):
  model = cross.model_from_config(cfg)
  model.a_f[...] = jnp.linspace(1.0, -1.0, general.N_FEATURES)  # a non-trivial head
  return model


def _cube(h, w, b):
  sc = synthetic.make_scene(h, w, b, n_targets=3, seed=h + b)
  return (1000.0 * sc.cube + 57.0).astype(np.float32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """(export file, model, cfg): written by `lrrjax export --checkpoint DIR` with
  the default platforms cpu, cuda, tpu."""
  tmp = tmp_path_factory.mktemp("export")
  cfg = _cfg()
  model = _model(cfg)
  cross.save_pretrained(tmp / cross.WORKDIR_FILE, model, cfg, ["synthetic"])
  out = tmp / "detector.lrrx"
  assert cli.main(["export", "--out", str(out), "--checkpoint", str(tmp)]) == 0
  return out, model, cfg


def test_even_sample_is_exact_and_matches_linspace_on_benchmark_sizes():
  for total, m in ((1, 1), (7, 7), (256, 256), (300, 256), (4166, 4096), (10000, 4096),
                   (22500, 4096), (8000, 4096), (2_000_003, 4096)):
    got = np.asarray(general.even_sample(total, m))
    i = np.arange(m, dtype=np.int64)
    np.testing.assert_array_equal(got, (i * (total - 1)) // max(m - 1, 1))
    assert np.all(np.diff(got) > 0) and got[-1] == total - 1
  for total in (80, 100, 150, 4096, 8000, 10000, 22500):  # benchmark rows and pixels
    m = min(total, 4096)
    np.testing.assert_array_equal(general.even_sample(total, m),
                                  np.unique(np.linspace(0, total - 1, m).astype(np.int32)))


def test_normalize_global_matches_numpy_normalisation():
  """prepare now normalises in float32 jnp (traceable); the float64 numpy path it
  replaced (io.normalize) differs by at most one float32 ulp."""
  cube = np.round(_cube(20, 24, 15)).astype(np.uint16)
  got = np.asarray(general.normalize_global(jnp.asarray(cube)))
  want = io.normalize(cube)
  assert got.dtype == np.float32 and got.min() == 0.0 and got.max() == 1.0
  np.testing.assert_array_less(np.abs(got - want), np.spacing(np.maximum(want, 2.0 ** -20)) * 1.01)
  assert np.all(np.asarray(general.normalize_global(jnp.full((3, 4, 2), 7.0))) == 0.0)


def test_export_runs_with_jax_alone_and_matches_score_cube(exported, tmp_path):
  out, model, cfg = exported
  cubes, paths = [_cube(*shape) for shape in SHAPES], []
  for cube in cubes:
    paths.append(str(tmp_path / ("cube_%dx%dx%d.npy" % cube.shape)))
    np.save(paths[-1], cube)
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env["JAX_PLATFORMS"] = "cpu"
  # the consumer runs while this process computes the reference (two cores)
  proc = subprocess.Popen([sys.executable, "-c", CONSUMER, str(out), *paths], cwd=tmp_path,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  want = [cross.score_cube(model, cfg, cube) for cube in cubes]
  stdout, stderr = proc.communicate(timeout=300)
  assert proc.returncode == 0, stderr
  assert stdout.strip() == "cpu,cuda,tpu"
  for p, a, (h, w, _) in zip(paths, want, SHAPES):
    z = np.load(p + ".scores.npy")
    assert z.shape == (h, w) and a.shape == (h, w)
    # the export's principal axes come from subspace iteration (symbolic band
    # count), equal to eigh's to rounding: a few pixels may differ by level
    # steps of the quantised top-hats (tests/quantised.py). One map value
    # crossing one level moves a whole connected component: on the 25 x 16
    # cube a 14-pixel one (3.5 % of it) did so on an AMD EPYC machine, not on
    # the machine of earlier sessions, so the fraction is CPU-dependent; the
    # level-step bound on every pixel is the invariant.
    assert_scores_match(z, a, model.a_f[...], min_close=0.95)
    assert np.std(a) > 0


def test_export_lowers_for_cpu_cuda_tpu(exported):
  out, _, cfg = exported
  loaded = ex.load_detector(out)
  e = loaded.exported
  assert e.platforms == ("cpu", "cuda", "tpu")
  assert str(e.in_avals[0].shape) == "(h, w, b)" and str(e.out_avals[0].shape) == "(h, w)"
  text = e.mlir_module()
  # the K x K eigh of the singular value thresholding, one lowering per platform
  for target in ("lapack_ssyevd_ffi", "cusolver_syevd_ffi", "Eigh"):
    assert f"@{target}" in text
  assert loaded.meta["version"] == ex.VERSION
  assert loaded.meta["config"]["net"]["stages"] == cfg.net.stages
  assert "h*w >= 6" in loaded.meta["constraints"]
  with pytest.raises(ValueError):   # w = 1 violates "w >= 2": refused by Exported.call
    e.call(np.ones((10, 1, 5), np.float32))


def _check(path, capsys):
  rc = cli.main(["export", "--check", str(path)])
  return rc, capsys.readouterr()


def test_check_describes_a_good_file(exported, capsys):
  rc, cap = _check(exported[0], capsys)
  assert rc == 0 and "float32[h,w,b]" in cap.out and "cpu,cuda,tpu" in cap.out


def test_file_of_another_version_is_a_clear_error(exported, tmp_path, capsys):
  data = exported[0].read_bytes()
  magic, rest = data.split(b"\n", 1)
  assert magic == f"{ex.FORMAT} {ex.VERSION}".encode()
  other = tmp_path / "old.lrrx"
  other.write_bytes(f"{ex.FORMAT} {ex.VERSION + 1}\n".encode() + rest)
  rc, cap = _check(other, capsys)
  assert rc == 2 and "version" in cap.err and str(other) in cap.err
  assert "Traceback" not in cap.err


@pytest.mark.parametrize("content", [b"not an export\n{}\nxx", b"", b"lrrjax-exported-detector 1",
                                     b"lrrjax-exported-detector 1\n{}\n\x00\x01garbage"])
def test_foreign_or_corrupt_file_is_a_clear_error(content, tmp_path, capsys):
  bad = tmp_path / "bad.lrrx"
  bad.write_bytes(content)
  rc, cap = _check(bad, capsys)
  assert rc == 2 and cap.err.startswith("error: ") and str(bad) in cap.err
  assert "Traceback" not in cap.err


def test_export_cli_errors(tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(cross, "DEFAULT_PRETRAINED", tmp_path / "missing.json")
  assert cli.main(["export", "--out", str(tmp_path / "x.lrrx")]) == 2
  assert "--checkpoint" in capsys.readouterr().err
  assert cli.main(["export", "--out", str(tmp_path / "x.lrrx"), "--checkpoint",
                   str(tmp_path)]) == 2
  assert cross.WORKDIR_FILE in capsys.readouterr().err
  (tmp_path / cross.WORKDIR_FILE).write_text(json.dumps({"format": "x"}))
  assert cli.main(["export", "--out", str(tmp_path / "x.lrrx"), "--checkpoint",
                   str(tmp_path), "--platforms", "cpu,gpu9"]) == 2
  assert "--platforms" in capsys.readouterr().err
  assert not (tmp_path / "x.lrrx").exists()
