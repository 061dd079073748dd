"""Synthetic anomalies implanted into real training scenes (the training signal).

The distribution was fixed before any AUC was looked at (BUILD_NOTES.md,
"Generalised LRR-Net+: the implant distribution"). Per crop:

* ``n ~ U{n_min..n_max}`` targets, squares placed uniformly, never touching each
  other, at least one pixel from the border;
* kind (probabilities ``kind_p``, see ``KINDS``): sub-pixel (one pixel, fill
  ``f ~ U(0.1, 0.5)``), a full 1x1, 2x2, 3x3 or 5x5 square, or an irregular
  blob of 6..40 pixels (random-walk growth in an 8 x 8 box), ``f ~ U(0.5, 1)``;
  a pixel becomes ``(1 - f) b + f t``;
* spectrum ``t``: with probability ``p_donor`` a pixel of *another* training
  scene, resampled to the host's band count by linear interpolation over the
  normalised band position, else a convex mixture (Dirichlet(1, 1)) of two pixels
  of the host crop; then a gain ``U(0.8, 1.25)`` and, with probability
  ``p_feature`` each, up to two narrow Gaussian features (centre uniform over
  the bands, width ``U(1, 3)`` bands, amplitude ``+-U(0.05, 0.3)`` times the
  spectrum's mean); clipped at 0;
* optionally (``n_distractors``, off by default) *distractors* placed first:
  ``U{lo..hi}`` full rectangles with sides ``U{8..16}`` (64-256 pixels, all
  larger than any target) of a spectrum from the same distribution, fill 1.
  They are **background**, not targets (left out of the mask): a large
  homogeneous patch of another material is a land-cover class, not an anomaly,
  and a score that ranks it above the targets is wrong. They teach the head
  size (BUILD_NOTES "Distractors").

Nothing here reads a ground-truth map.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np


class ImplantSpec(NamedTuple):
  n_min: int = 4
  n_max: int = 10
  kind_p: tuple = (0.2, 0.15, 0.2, 0.15, 0.1, 0.2)  # see KINDS
  p_donor: float = 0.5
  p_feature: float = 0.5
  n_distractors: tuple = (0, 0)   # (lo, hi) large background patches, see above


# (name, bounding side): sub-pixel, full squares, and an irregular blob of
# 6..40 pixels grown by a random walk inside an 8 x 8 box.
KINDS = (("subpixel", 1), ("1x1", 1), ("2x2", 2), ("3x3", 3), ("5x5", 5), ("blob", 8))
SUBPIXEL = 0
MAX_PIXELS = 40
DISTRACTOR_SIDES = (8, 16)


def _shape(rng, kind: int) -> np.ndarray:
  """Boolean footprint of a target of ``KINDS[kind]``."""
  name, side = KINDS[kind]
  if name != "blob":
    return np.ones((side, side), bool)
  fp = np.zeros((side, side), bool)
  r, c = side // 2, side // 2
  target = int(rng.integers(6, MAX_PIXELS + 1))
  fp[r, c] = True
  while fp.sum() < target:
    dr, dc = ((0, 1), (1, 0), (0, -1), (-1, 0))[int(rng.integers(4))]
    r, c = min(max(r + dr, 0), side - 1), min(max(c + dc, 0), side - 1)
    fp[r, c] = True
  return fp


def resample_bands(spec_b: np.ndarray, bands: int) -> np.ndarray:
  """Linear interpolation of a spectrum onto ``bands`` evenly spaced positions."""
  src = np.linspace(0.0, 1.0, spec_b.shape[-1])
  return np.interp(np.linspace(0.0, 1.0, bands), src, spec_b)


def _spectrum(rng, crop_nb: np.ndarray, donors: Sequence[np.ndarray],
              spec: ImplantSpec) -> tuple[np.ndarray, str]:
  b = crop_nb.shape[1]
  if donors and rng.random() < spec.p_donor:
    d = donors[int(rng.integers(len(donors)))]
    t = resample_bands(d[int(rng.integers(d.shape[0]))].astype(np.float64), b)
    src = "donor"
  else:
    i, j = rng.integers(crop_nb.shape[0], size=2)
    a = rng.dirichlet((1.0, 1.0))
    t = a[0] * crop_nb[i].astype(np.float64) + a[1] * crop_nb[j]
    src = "mixture"
  t = t * rng.uniform(0.8, 1.25)
  pos = np.arange(b)
  for _ in range(2):
    if rng.random() < spec.p_feature:
      c = rng.uniform(0, b - 1)
      width = rng.uniform(1.0, 3.0)
      amp = rng.uniform(0.05, 0.3) * rng.choice((-1.0, 1.0)) * max(t.mean(), 1e-3)
      t = t + amp * np.exp(-0.5 * ((pos - c) / width) ** 2)
  return np.clip(t, 0.0, None), src


def _place(rng, taken: np.ndarray, sh: int, sw: int) -> tuple[int, int] | None:
  """A random ``sh x sw`` position at least one pixel from the border and not
  touching ``taken`` (100 tries); marks it taken. None when every try failed."""
  h, w = taken.shape
  for _ in range(100):
    r = int(rng.integers(1, h - sh))
    c = int(rng.integers(1, w - sw))
    if not taken[r - 1:r + sh + 1, c - 1:c + sw + 1].any():
      taken[r:r + sh, c:c + sw] = True
      return r, c
  return None


def implant(crop_hwb: np.ndarray, rng: np.random.Generator,
            donors: Sequence[np.ndarray] = (), spec: ImplantSpec = ImplantSpec()
            ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
  """Implants targets into a copy of ``crop_hwb`` (normalised values).

  Args:
    crop_hwb: (H, W, B) host pixels.
    rng: numpy Generator (the only source of randomness).
    donors: (N_d, B_d) pixel arrays of other scenes (any band counts).
    spec: the distribution.

  Returns:
    ``(cube_hwb, mask_hw, targets)``: the implanted copy (float32), the boolean
    implant mask and one record per target (row, col, side, fill, source).
  """
  h, w, b = crop_hwb.shape
  out = np.array(crop_hwb, dtype=np.float64, copy=True)
  mask = np.zeros((h, w), bool)
  taken = np.zeros((h, w), bool)
  crop_nb = crop_hwb.reshape(-1, b)
  records = []
  if spec.n_distractors[1] > 0:
    for _ in range(int(rng.integers(spec.n_distractors[0], spec.n_distractors[1] + 1))):
      lo_s, hi_s = DISTRACTOR_SIDES
      sh, sw = (int(v) for v in rng.integers(lo_s, hi_s + 1, size=2))
      t, src = _spectrum(rng, crop_nb, donors, spec)
      at = None if h - sh <= 1 or w - sw <= 1 else _place(rng, taken, sh, sw)
      if at is None:
        continue
      r, c = at
      out[r:r + sh, c:c + sw] = t
      records.append({"row": r, "col": c, "kind": "distractor", "pixels": sh * sw,
                      "fill": 1.0, "source": src})
  n = int(rng.integers(spec.n_min, spec.n_max + 1))
  for _ in range(n):
    kind = int(rng.choice(len(KINDS), p=np.asarray(spec.kind_p) / np.sum(spec.kind_p)))
    fp = _shape(rng, kind)
    side = fp.shape[0]
    f = rng.uniform(0.1, 0.5) if kind == SUBPIXEL else rng.uniform(0.5, 1.0)
    t, src = _spectrum(rng, crop_nb, donors, spec)
    at = _place(rng, taken, side, side)
    if at is None:
      continue
    r, c = at
    mask[r:r + side, c:c + side] |= fp
    block = out[r:r + side, c:c + side]
    block[fp] = (1 - f) * block[fp] + f * t
    records.append({"row": r, "col": c, "kind": KINDS[kind][0], "pixels": int(fp.sum()),
                    "fill": float(f), "source": src})
  return out.astype(np.float32), mask, records
