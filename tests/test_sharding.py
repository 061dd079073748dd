"""Sharded (pixel-parallel) inference and training equal single-device runs.

Runs in subprocesses: two virtual CPU devices in one process (the XLA flag must
be set before JAX starts, so it cannot run in the test process itself), and two
processes joined by ``jax.distributed`` over localhost (CPU collectives: gloo).
"""

import os
import subprocess
import sys
import textwrap

import numpy as np

import localhost_procs  # tests/ is on sys.path (rootdir conftest)

SCRIPT = textwrap.dedent("""
    import numpy as np, jax
    from lrrjax import synthetic
    from lrrjax.lrr import sharding, train
    assert len(jax.devices()) == 2, jax.devices()
    scene = synthetic.make_scene(24, 24, 30, n_targets=6, seed=3)
    x = scene.x_bn()
    cfg = train.config_with({"model.per_cluster": 2, "model.n_clusters": 5,
                             "model.stages": 4, "train.steps": 0})
    model = train.build_model(x, cfg)
    ref = train.detect(model, x)
    xs = sharding.shard_pixels(x)
    assert len(xs.sharding.device_set) == 2
    got = train.detect(model, xs)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5 * float(ref.max()))
    from lrrjax.errors import ConfigError
    try:
      sharding.shard_pixels(np.ones((3, 11), np.float32))
    except ConfigError as e:
      assert "11 pixels" in str(e)
    else:
      raise AssertionError("uneven split accepted")
    print("sharded-ok")
""")


def _run_on_two_virtual_devices(script: str, marker: str) -> None:
  """Runs ``script`` in a fresh Python with two virtual CPU devices; it must print ``marker``."""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert marker in proc.stdout


def test_pixel_sharded_detect_matches_single_device():
  _run_on_two_virtual_devices(SCRIPT, "sharded-ok")


TRAIN_SCRIPT = textwrap.dedent("""
    import numpy as np, jax
    from lrrjax import synthetic
    from lrrjax.errors import ConfigError
    from lrrjax.lrr import methods, train
    assert len(jax.devices()) == 2, jax.devices()
    scene = synthetic.make_scene(24, 24, 30, n_targets=6, seed=3)
    x = scene.x_bn("global")
    base = {"model.per_cluster": 2, "model.n_clusters": 5, "model.stages": 4,
            "train.steps": 3, "train.batch_pixels": 256, "train.plateau_window": 10}
    ref = train.train(x, train.config_with(base))
    par = train.train(x, train.config_with({**base, "train.data_parallel": True}))
    # float32 reductions split over two devices add in another order: ~1e-4 relative
    np.testing.assert_allclose(par.history["loss"], ref.history["loss"], rtol=2e-3)
    a, b = train.detect(ref.model, x), train.detect(par.model, x)
    np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4 * float(a.max()))
    # the registered method trains and scores pixel-parallel end to end
    m = methods.lrrnet_plus_finetune(scene, **{k.replace(".", "__"): v for k, v in base.items()},
                            train__data_parallel=True)
    np.testing.assert_allclose(m.ravel(), a, rtol=1e-3, atol=1e-4 * float(a.max()))
    try:
      train.train(x, train.config_with({**base, "train.data_parallel": True,
                                        "train.batch_pixels": 255}))
    except ConfigError as e:
      assert "255 batch pixels" in str(e), e
    else:
      raise AssertionError("uneven batch accepted")
    print("sharded-train-ok")
""")


def test_data_parallel_training_matches_single_device():
  _run_on_two_virtual_devices(TRAIN_SCRIPT, "sharded-train-ok")


DISTRIBUTED_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, jax
    try:
      jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except Exception:  # newer JAX: gloo is the default CPU collectives
      pass
    jax.distributed.initialize(sys.argv[1], num_processes=2, process_id=int(sys.argv[2]))
    assert jax.process_count() == 2 and len(jax.devices()) == 2
    from lrrjax import synthetic
    from lrrjax.lrr import sharding, train
    scene = synthetic.make_scene(24, 24, 30, n_targets=6, seed=3)
    x = scene.x_bn("global")
    base = {"model.per_cluster": 2, "model.n_clusters": 5, "model.stages": 4,
            "train.steps": 3, "train.batch_pixels": 256, "train.plateau_window": 10}
    ref = train.train(x, train.config_with(base))          # this process alone
    par = train.train(x, train.config_with({**base, "train.data_parallel": True}),
                      workdir=sys.argv[3])                 # one orbax checkpoint, both processes
    np.testing.assert_allclose(par.history["loss"], ref.history["loss"], rtol=2e-3)
    a = train.detect(ref.model, x)
    b = train.detect(par.model, sharding.shard_pixels(x))  # shards on both processes
    assert b.shape == a.shape
    np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4 * float(a.max()))
    if jax.process_index() == 0:
      np.save(sys.argv[3] + "/scores.npy", b)
    print("distributed-ok", jax.process_index())
""")


def test_two_processes_train_and_detect_over_jax_distributed(tmp_path):
  """Data-parallel training over two processes; its checkpoint restores in one."""
  port = localhost_procs.free_port()
  runs = localhost_procs.run_together(
      [[sys.executable, "-c", DISTRIBUTED_SCRIPT, f"localhost:{port}", str(i), str(tmp_path)]
       for i in range(2)], localhost_procs.cpu_env(), timeout=300)
  for i, (rc, out, err) in enumerate(runs):
    assert rc == 0, err[-3000:]
    assert f"distributed-ok {i}" in out
  from lrrjax import synthetic  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import train  # pylint: disable=import-outside-toplevel
  model, _ = train.restore(tmp_path)
  x = synthetic.make_scene(24, 24, 30, n_targets=6, seed=3).x_bn("global")
  np.testing.assert_allclose(train.detect(model, x), np.load(tmp_path / "scores.npy"),
                             rtol=1e-4, atol=1e-6)
