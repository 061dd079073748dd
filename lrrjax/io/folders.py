"""The data folder and the scene files in it."""

from __future__ import annotations

import os
import pathlib

from lrrjax.errors import SceneError
from lrrjax.io._util import PathLike

SCENE_EXTS = (".mat", ".npz", ".hdr")


def _repo_root(start: pathlib.Path) -> pathlib.Path | None:
  for p in (start, *start.parents):
    if (p / "pyproject.toml").is_file():
      return p
  return None


def data_dir() -> pathlib.Path:
  """The folder of real scenes.

  ``$LRRJAX_DATA_DIR`` if set; else ``../shared/data`` relative to the repo
  root (the folder with ``pyproject.toml``) found from this module, then from
  the working directory; else ``../shared/data`` relative to the working
  directory. The path is returned even when it does not exist.
  """
  env = os.environ.get("LRRJAX_DATA_DIR")
  if env:
    return pathlib.Path(env).expanduser()
  candidates = []
  for start in (pathlib.Path(__file__).resolve().parent,
                pathlib.Path.cwd().resolve()):
    root = _repo_root(start)
    if root is not None:
      candidates.append((root / ".." / "shared" / "data").resolve())
  candidates.append((pathlib.Path.cwd() / ".." / "shared" / "data").resolve())
  return next((c for c in candidates if c.is_dir()), candidates[0])


def list_scenes(folder: PathLike | None = None,
                names: str | list[str] | None = None) -> list[pathlib.Path]:
  """Sorted ``.mat``, ``.npz`` and ``.hdr`` files in ``folder`` (default :func:`data_dir`).

  Hidden files and README*/SOURCES* are ignored; not recursive. ``names``
  (file stems, a list or one comma-separated string; empty = all) keeps only
  those scenes, in the order given.

  Raises:
    SceneError: the folder does not exist, or a name in ``names`` is not a
      scene there.
  """
  folder = pathlib.Path(folder) if folder is not None else data_dir()
  found = _scene_files(folder)
  if not names:
    return found
  wanted = [n for n in (names.split(",") if isinstance(names, str) else names) if n]
  missing = sorted(set(wanted) - {p.stem for p in found})
  if missing:
    raise SceneError(f"scene(s) {missing} not found in {folder}; "
                     f"available: {[p.stem for p in found]}")
  by_stem = {p.stem: p for p in found}
  return [by_stem[n] for n in dict.fromkeys(wanted)]


def _scene_files(folder: pathlib.Path) -> list[pathlib.Path]:
  if not folder.is_dir():
    raise SceneError(f"{folder}: scene folder not found")
  out = []
  for p in folder.iterdir():
    stem = p.name.upper()
    if (p.is_file() and p.suffix.lower() in SCENE_EXTS
        and not p.name.startswith(".")
        and not stem.startswith(("README", "SOURCES"))):
      out.append(p)
  return sorted(out)
