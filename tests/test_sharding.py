"""Sharded (pixel-parallel) inference equals single-device inference.

Runs in a subprocess with two virtual CPU devices (the XLA flag must be set
before JAX starts, so it cannot run in the test process itself).
"""

import os
import subprocess
import sys
import textwrap

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


def test_pixel_sharded_detect_matches_single_device():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "sharded-ok" in proc.stdout

