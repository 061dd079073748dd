"""The suite manifest `suite.json`: version, files, sha256, targets; the training guard.

A suite folder holds scene files and one manifest, `suite.json`:

  {"version": "lrrjax-suite/1", "seed": S, "size": "small" | "full",
   "training": {"allowed": false, "reason": ...},
   "sources": [{"name", "sha256", "family", "shape"}],     # the real scenes read
   "excluded": [{"name", "reason"}],                        # sources not used as hosts
   "strata": {"sizes": [...], "fill_bins": [[lo, hi], ...]},
   "scenes": [{"file", "sha256", "kind", "shape", "background": {...},
               "targets": [{"id", "row", "col", "size", "fill", "context",
                            "spectrum": {...}}]}]}

The manifest is deterministic (no time stamps); the provenance of the run that
made it (time, git revision, versions) goes to `provenance.json` beside it.
The suite's targets are built from real ground truth, so a suite is never
training data: :func:`check_not_suite` is the guard every trainer calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Any

from lrrjax import io
from lrrjax.errors import ConfigError, SceneError

VERSION = "lrrjax-suite/1"
MANIFEST = "suite.json"
TRAINING_NOTE = (
    "Never training data: the implanted targets are spectra cut from the real "
    "labelled anomalies of the source scenes and the backgrounds were inpainted "
    "with their real labels; a method trained on these files has seen the "
    "ground truth. lrrjax trainers refuse this folder unless the run is marked "
    "not comparable.")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
  """Hex sha256 of a file, read in chunks."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    while True:
      block = f.read(chunk)
      if not block:
        break
      h.update(block)
  return h.hexdigest()


def manifest_text(manifest: dict[str, Any]) -> str:
  """The canonical JSON text of a manifest (sorted keys, 1-space indent)."""
  return json.dumps(manifest, indent=1, sort_keys=True, allow_nan=False) + "\n"


def write_manifest(folder: str | os.PathLike, manifest: dict[str, Any]) -> pathlib.Path:
  """Writes `folder/suite.json` atomically (temp file, then os.replace)."""
  path = pathlib.Path(folder) / MANIFEST
  tmp = path.with_name("." + MANIFEST + ".tmp")
  tmp.write_text(manifest_text(manifest), encoding="utf-8")
  os.replace(tmp, path)
  return path


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
  """Reads and checks the shape of `folder/suite.json`.

  Raises:
    SceneError: no manifest, unreadable JSON, a missing field or another
      suite version than this lrrjax makes.
  """
  path = pathlib.Path(folder) / MANIFEST
  if not path.is_file():
    raise SceneError(f"{folder}: no suite manifest {MANIFEST} (not a suite folder)")
  try:
    manifest = json.loads(path.read_text(encoding="utf-8"))
  except (OSError, ValueError) as e:
    raise SceneError(f"{path}: unreadable suite manifest: {e}") from e
  if not isinstance(manifest, dict):
    raise SceneError(f"{path}: a suite manifest is a JSON object")
  missing = [k for k in ("version", "scenes") if k not in manifest]
  if missing:
    raise SceneError(f"{path}: suite manifest lacks {', '.join(missing)}")
  if manifest["version"] != VERSION:
    raise SceneError(f"{path}: suite version {manifest['version']!r}; this lrrjax "
                     f"reads and makes {VERSION!r} (remake the suite)")
  return manifest


def is_suite(folder: str | os.PathLike) -> bool:
  """True when `folder` holds a suite manifest."""
  return (pathlib.Path(folder) / MANIFEST).is_file()


def verify(folder: str | os.PathLike) -> dict[str, Any]:
  """Reads the manifest and checks it against the folder's scene files.

  Every scene named in the manifest must exist with the recorded sha256, and
  every scene file of the folder (io.list_scenes) must be named in it.

  Returns:
    The manifest.

  Raises:
    SceneError: naming the first file that is missing, changed or unlisted.
  """
  folder = pathlib.Path(folder)
  manifest = read_manifest(folder)
  listed = set()
  for rec in manifest["scenes"]:
    path = folder / rec["file"]
    listed.add(rec["file"])
    if not path.is_file():
      raise SceneError(f"{path}: listed in the suite manifest but missing")
    digest = sha256_file(path)
    if digest != rec["sha256"]:
      raise SceneError(
          f"{path}: sha256 {digest[:12]}... does not match the suite manifest "
          f"({rec['sha256'][:12]}...); the file was changed after the suite was "
          f"made: remake the suite")
  extra = [p.name for p in io.list_scenes(folder) if p.name not in listed]
  if extra:
    raise SceneError(f"{folder}: scene file(s) {', '.join(extra)} are not in the "
                     f"suite manifest {MANIFEST}")
  return manifest


def find_suite(path: str | os.PathLike) -> pathlib.Path | None:
  """The suite folder that `path` (a folder, a scene file or a manifest) belongs to, or None.

  A folder belongs to a suite when it, or its parent, holds `suite.json`; a
  file when its folder does.
  """
  path = pathlib.Path(path)
  if path.name == MANIFEST:
    return path.parent
  start = path if path.is_dir() else path.parent
  for folder in (start, start.parent):
    if (folder / MANIFEST).is_file():
      return folder
  return None


def check_not_suite(path: str | os.PathLike, allow: bool = False) -> pathlib.Path | None:
  """The training guard: refuses a path that belongs to a benchmark suite.

  Args:
    path: training data (a folder or a scene file).
    allow: the user's explicit flag marking the run as not comparable.

  Returns:
    The suite folder when `path` belongs to one and `allow` is set (the caller
    records the run as not comparable), else None.

  Raises:
    ConfigError: `path` belongs to a suite and `allow` is False.
  """
  folder = find_suite(path)
  if folder is None:
    return None
  if not allow:
    raise ConfigError(
        f"{path} belongs to the benchmark suite in {folder} ({MANIFEST}); its "
        f"targets were built from real ground truth, so it is never training data. "
        f"Pass --allow-suite-data to train on it anyway; the run is then marked "
        f"not comparable")
  return folder
