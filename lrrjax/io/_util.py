"""Small formatting and checking helpers shared by the readers."""

from __future__ import annotations

import os
import pathlib
from typing import Mapping

import numpy as np

from lrrjax.errors import SceneError

PathLike = str | os.PathLike


def _fmt_values(values: np.ndarray, limit: int = 10) -> str:
  vals = [v.item() if hasattr(v, "item") else v for v in values[:limit]]
  more = f", ... ({len(values)} distinct)" if len(values) > limit else ""
  return "{" + ", ".join(repr(v) for v in vals) + more + "}"


def _fmt_indices(idx, limit: int = 20) -> str:
  idx = [int(i) for i in idx]
  more = f", ... ({len(idx)} in all)" if len(idx) > limit else ""
  return "[" + ", ".join(map(str, idx[:limit])) + more + "]"


def _describe(arrays: Mapping[str, np.ndarray]) -> str:
  """One line per array: ``'key' (shape) dtype``."""
  if not arrays:
    return "(no arrays)"
  return ", ".join(
      f"{k!r} {tuple(np.shape(v))} {getattr(v, 'dtype', type(v).__name__)}"
      for k, v in arrays.items())


def _is_real_numeric(a: np.ndarray) -> bool:
  return (isinstance(a, np.ndarray) and a.dtype != object
          and (np.issubdtype(a.dtype, np.integer)
               or np.issubdtype(a.dtype, np.floating) or a.dtype == bool))


def _check_exists(path: pathlib.Path) -> None:
  if not path.exists():
    raise SceneError(f"{path}: file not found")
  if path.is_dir():
    raise SceneError(f"{path}: is a directory, not a scene file")
