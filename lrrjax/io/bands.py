"""Band selection: parsing band lists and choosing the bands a scene keeps.

Real flight lines carry dead bands (constant, zero variance) and
water-absorption bands (noise). A band list is a comma-separated mix of
0-based indices and inclusive ranges, ``"0-99,120-149"`` or ``"3,7,104-108"``
(the same syntax for the bands to keep and the bands to drop).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lrrjax.errors import ConfigError, SceneError
from lrrjax.io._util import _fmt_indices


def parse_band_list(text: str, what: str = "band list") -> list[int]:
  """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]`` (sorted, unique, 0-based, ranges inclusive).

  Raises:
    ConfigError: an empty list, a non-integer item, a negative index or a
      range whose end is before its start (the message names ``what``).
  """
  out: set[int] = set()
  items = [t.strip() for t in str(text).split(",") if t.strip()]
  if not items:
    raise ConfigError(f"{what}: empty band list {text!r}")
  for item in items:
    lo, sep, hi = item.partition("-")
    try:
      a = int(lo)
      b = int(hi) if sep else a
    except ValueError:
      raise ConfigError(
          f"{what}: {item!r} is not a 0-based band index or an inclusive range "
          f"like 10-20 (got {text!r})") from None
    if a < 0 or b < a:
      raise ConfigError(f"{what}: bad band range {item!r} in {text!r}")
    out.update(range(a, b + 1))
  return sorted(out)


def select_bands(n_bands: int, keep: Sequence[int] | None = None,
                 drop: Sequence[int] | None = None,
                 where: str = "scene") -> np.ndarray | None:
  """The sorted band indices kept from ``n_bands``: ``keep`` (default all) minus ``drop``.

  Returns None when every band is kept (nothing to select).

  Raises:
    SceneError: an index is ``>= n_bands``, or no band is left.
  """
  if keep is None and not drop:
    return None
  kept = np.arange(n_bands) if keep is None else np.unique(np.asarray(keep, int))
  for name, idx in (("--bands", keep), ("--bad-bands", drop)):
    if idx is not None and len(idx) and max(idx) >= n_bands:
      over = [int(i) for i in idx if i >= n_bands]
      raise SceneError(
          f"{where}: {name} names band(s) {_fmt_indices(over)} but the cube has "
          f"{n_bands} bands (0-based indices 0..{n_bands - 1})")
  if drop:
    kept = np.setdiff1d(kept, np.asarray(drop, int))
  if kept.size == 0:
    raise SceneError(f"{where}: no band left after the band selection")
  if kept.size == n_bands:
    return None
  return kept


def subset_band_metadata(meta: dict, n_bands: int, kept) -> None:
  """Subsets per-band metadata lists (``wavelength``, ``band_names``) in place."""
  for k in ("wavelength", "band_names"):
    if isinstance(meta.get(k), list) and len(meta[k]) == n_bands:
      meta[k] = [meta[k][int(i)] for i in kept]
