"""Launching ``jax.distributed`` processes on localhost for the multi-process tests."""

import os
import socket
import subprocess


def free_port() -> int:
  """A free TCP port on localhost (for the jax.distributed coordinator)."""
  with socket.socket() as sock:
    sock.bind(("localhost", 0))
    return sock.getsockname()[1]


def cpu_env(**extra) -> dict:
  """The environment of a CPU-only child: no virtual-device XLA flags inherited."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", **extra)
  env.pop("XLA_FLAGS", None)
  return env


def run_together(argvs, env, timeout: float, cwd=None) -> list:
  """Starts every argv at once (they wait for each other in jax.distributed),
  waits for all, kills any left over, and returns their (returncode, stdout, stderr)."""
  procs = [subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for argv in argvs]
  outs = []
  try:
    for proc in procs:
      out, err = proc.communicate(timeout=timeout)
      outs.append((proc.returncode, out, err))
  finally:
    for proc in procs:
      proc.kill()
  return outs
