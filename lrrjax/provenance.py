"""Provenance of a run: versions, platform, devices, git revision, time, command.

Every artefact the CLI, the benchmark and the experiment driver write carries
one of these records, so a number in a results table can be traced to the code
and software that produced it.
"""

import datetime
import importlib.metadata
import json
import math
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
from typing import Any

PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "scipy",
            "orbax-checkpoint", "ml-collections", "h5py", "matplotlib",
            "absl-py", "scikit-image", "lrrjax")

_REPO = pathlib.Path(__file__).resolve().parents[1]


def package_versions(packages=PACKAGES) -> dict[str, str | None]:
  """Installed distribution versions (None when a package is absent)."""
  out = {}
  for name in packages:
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      out[name] = None
  return out


def _git(*args: str, cwd: pathlib.Path) -> str | None:
  try:
    res = subprocess.run(("git", *args), cwd=cwd, capture_output=True,
                         text=True, timeout=10, check=False)
  except (OSError, subprocess.SubprocessError):
    return None
  if res.returncode != 0:
    return None
  return res.stdout.strip()


def git_revision(repo: str | os.PathLike | None = None) -> dict[str, Any]:
  """`{"revision": sha|None, "dirty": bool|None}` of the repository holding lrrjax.

  Tolerates a missing git binary or an installation outside a work tree (both
  fields are then None).
  """
  cwd = pathlib.Path(repo) if repo is not None else _REPO
  sha = _git("rev-parse", "HEAD", cwd=cwd)
  if sha is None:
    return {"revision": None, "dirty": None}
  status = _git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
  return {"revision": sha, "dirty": None if status is None else bool(status)}


def jax_info() -> dict[str, Any]:
  """Default backend, device list and process layout of the running JAX."""
  try:
    import jax  # pylint: disable=import-outside-toplevel
    return {
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
    }
  except Exception as e:  # pylint: disable=broad-except
    return {"backend": None, "error": f"{type(e).__name__}: {e}"}


def _plain(obj: Any) -> Any:
  """Converts configs / numpy scalars / paths to JSON-serialisable values."""
  if obj is None or isinstance(obj, (bool, int, str)):
    return obj
  if isinstance(obj, float):
    return obj
  if hasattr(obj, "to_dict") and callable(obj.to_dict):  # ConfigDict
    return _plain(obj.to_dict())
  if isinstance(obj, dict):
    return {str(k): _plain(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple, set, frozenset)):
    return [_plain(v) for v in obj]
  if isinstance(obj, os.PathLike):
    return os.fspath(obj)
  if hasattr(obj, "tolist"):  # numpy / jax scalars and arrays
    return _plain(obj.tolist())
  return repr(obj)


def record(config: Any = None, seed: int | None = None) -> dict[str, Any]:
  """Provenance record of the current process.

  Args:
    config: optional configuration (ConfigDict or dict) to embed.
    seed: optional seed to embed.

  Returns:
    dict with keys `versions`, `python`, `platform`, `jax`, `git`, `time_utc`,
    `command`, `cwd`, and `config` / `seed` when given.
  """
  rec = {
      "versions": package_versions(),
      "python": sys.version.split()[0],
      "platform": platform.platform(),
      "machine": platform.machine(),
      "jax": jax_info(),
      "git": git_revision(),
      "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"),
      "command": list(sys.argv),
      "cwd": os.getcwd(),
  }
  if config is not None:
    rec["config"] = _plain(config)
  if seed is not None:
    rec["seed"] = int(seed)
  return rec


def _finite(obj: Any) -> Any:
  """Replaces NaN by None and +-inf by the strings "inf" / "-inf" (valid JSON)."""
  if isinstance(obj, float):
    if math.isnan(obj):
      return None
    if math.isinf(obj):
      return "inf" if obj > 0 else "-inf"
    return obj
  if isinstance(obj, dict):
    return {k: _finite(v) for k, v in obj.items()}
  if isinstance(obj, list):
    return [_finite(v) for v in obj]
  return obj


def to_json(obj: Any) -> str:
  """Strict JSON text of `obj` (NaN -> null, inf -> "inf"), 2-space indented."""
  return json.dumps(_finite(_plain(obj)), indent=2, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> pathlib.Path:
  """Writes `obj` as strict JSON atomically (temp file in the same folder, then os.replace)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  text = to_json(obj)
  fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                             dir=path.parent)
  try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      f.write(text)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise
  return path


def read_json(path: str | os.PathLike) -> Any:
  """Reads a file written by :func:`write_json`."""
  with open(path, encoding="utf-8") as f:
    return json.load(f)
