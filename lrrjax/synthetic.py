"""A deterministic synthetic hyperspectral scene with known anomalies.

Linear mixing model. With wavelengths ``lambda_b`` (400..2500 nm), ``K``
endmember spectra ``e_k(lambda)`` (smooth, positive) and per-pixel abundances
``a_k(r, c) >= 0``, ``sum_k a_k = 1``, the background is

  ``y(r, c, b) = g_b * sum_k a_k(r, c) e_k(lambda_b) + sigma_b * n``,

so its noise-free part has rank <= K. Abundances are Gaussian-filtered random
fields passed through a softmax (spatially smooth, sum to one). ``g_b`` is a
per-band gain near 1 (calibration error) and ``sigma_b`` a noise level that
rises towards both ends of the spectrum (lower sensor SNR there).

Targets replace the background in their pixels by
``(1 - f) * background + f * t`` with a distinct spectrum ``t`` (a background
mixture plus one or two narrow absorption/emission features, so some targets
are barely separable), in four sizes cycled over the targets: sub-pixel
(one pixel, ``f`` in [0.1, 0.5]), 1x1, 2x2 and 3x3 (``f`` in [0.6, 1]). They
are placed at least 3 pixels from the border and never touch each other.
``gt`` marks every target pixel.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lrrjax.errors import ConfigError
from lrrjax.io import Scene

_MARGIN = 3
_SIZES = (0, 1, 2, 3)  # 0 = sub-pixel (one mixed pixel)


def smooth_spectra(rng: np.random.Generator, wl: np.ndarray, n: int,
                   n_bumps: int = 4) -> np.ndarray:
  """``(n, B)`` smooth positive spectra: baseline + slope + broad Gaussians."""
  span = wl[-1] - wl[0]
  out = np.empty((n, wl.size))
  for i in range(n):
    s = rng.uniform(0.05, 0.2) + rng.uniform(-0.05, 0.05) * (wl - wl[0]) / span
    for _ in range(n_bumps):
      mu = rng.uniform(wl[0], wl[-1])
      width = rng.uniform(0.05, 0.2) * span
      s = s + rng.uniform(0.05, 0.3) * np.exp(-0.5 * ((wl - mu) / width) ** 2)
    out[i] = s
  return np.clip(out, 0.02, None)


def _abundances(rng: np.random.Generator, h: int, w: int, k: int) -> np.ndarray:
  """``(H, W, K)`` smooth abundances, nonnegative, summing to one per pixel."""
  sigma = max(h, w) / 10.0
  fields = rng.standard_normal((k, h, w))
  fields = np.stack([ndimage.gaussian_filter(f, sigma, mode="reflect")
                     for f in fields])
  fields /= fields.std(axis=(1, 2), keepdims=True) + 1e-12
  logits = 2.5 * fields  # temperature: fairly pure regions with mixed borders
  logits -= logits.max(axis=0, keepdims=True)
  a = np.exp(logits)
  return (a / a.sum(axis=0, keepdims=True)).transpose(1, 2, 0)


def _place(rng: np.random.Generator, h: int, w: int,
           sizes: list[int]) -> list[tuple[int, int]]:
  """Top-left corners for squares of the given sides; non-touching, off-border."""
  taken = np.zeros((h, w), bool)
  corners = []
  for side in sizes:
    for _ in range(10000):
      r = int(rng.integers(_MARGIN, h - _MARGIN - side + 1))
      c = int(rng.integers(_MARGIN, w - _MARGIN - side + 1))
      if not taken[r - 1:r + side + 1, c - 1:c + side + 1].any():
        taken[r:r + side, c:c + side] = True
        corners.append((r, c))
        break
    else:
      raise ConfigError(
          f"make_scene: cannot place {len(sizes)} non-touching targets in a "
          f"{h}x{w} image; use fewer targets or a larger image")
  return corners


def make_scene(height: int = 64, width: int = 64, bands: int = 100,
               n_endmembers: int = 4, n_targets: int = 12,
               noise_std: float = 0.01, seed: int = 0,
               name: str = "synthetic") -> Scene:
  """Builds the synthetic scene described in the module docstring.

  Args:
    height, width, bands: cube shape ``(H, W, B)``.
    n_endmembers: background endmembers ``K`` (background rank <= K).
    n_targets: targets, sizes cycling sub-pixel, 1x1, 2x2, 3x3.
    noise_std: mean Gaussian noise level (reflectance units).
    seed: seed of the ``numpy.random.Generator``; same seed, same scene.
    name: scene name.

  Returns:
    A :class:`Scene` with float32 reflectance-like values in [0, 1] and gt;
    metadata holds wavelength (nm), endmembers ``(K, B)``, abundances
    ``(H, W, K)``, the noise-free background, and per-target
    row/col/size/fraction.

  Raises:
    ConfigError: sizes out of range or targets that do not fit.
  """
  if height < 2 * _MARGIN + 3 or width < 2 * _MARGIN + 3:
    raise ConfigError(f"make_scene: height, width must be >= {2 * _MARGIN + 3}; "
                      f"got {height}x{width}")
  if bands < 2 or n_endmembers < 1 or n_endmembers >= bands:
    raise ConfigError(f"make_scene: need bands >= 2 and 1 <= n_endmembers < "
                      f"bands; got bands={bands}, n_endmembers={n_endmembers}")
  if n_targets < 0 or noise_std < 0:
    raise ConfigError(f"make_scene: n_targets and noise_std must be >= 0; got "
                      f"{n_targets}, {noise_std}")
  rng = np.random.default_rng(seed)
  wl = np.linspace(400.0, 2500.0, bands)
  e_kb = smooth_spectra(rng, wl, n_endmembers)
  a_hwk = _abundances(rng, height, width, n_endmembers)
  clean = a_hwk @ e_kb  # (H, W, B), rank <= K

  sizes = [_SIZES[i % len(_SIZES)] for i in range(n_targets)]
  corners = _place(rng, height, width, [max(s, 1) for s in sizes])
  gt = np.zeros((height, width), bool)
  targets = []
  span = wl[-1] - wl[0]
  for side, (r, c) in zip(sizes, corners):
    mix = rng.dirichlet(np.ones(n_endmembers))
    t = mix @ e_kb
    for _ in range(int(rng.integers(1, 3))):  # narrow distinct features
      mu = rng.uniform(wl[0] + 0.05 * span, wl[-1] - 0.05 * span)
      width_nm = rng.uniform(0.01, 0.04) * span
      amp = rng.uniform(0.03, 0.15) * rng.choice([-1.0, 1.0])
      t = t + amp * np.exp(-0.5 * ((wl - mu) / width_nm) ** 2)
    t = np.clip(t, 0.01, None)
    f = rng.uniform(0.1, 0.5) if side == 0 else rng.uniform(0.6, 1.0)
    s = max(side, 1)
    clean[r:r + s, c:c + s] = (1 - f) * clean[r:r + s, c:c + s] + f * t
    gt[r:r + s, c:c + s] = True
    targets.append({"row": r, "col": c, "size": s, "fraction": float(f),
                    "subpixel": side == 0})

  u = (wl - wl.mean()) / (0.5 * span)
  sigma_b = noise_std * (0.7 + 0.6 * u ** 2)  # mean ~ noise_std, worse at ends
  gain_b = 1.0 + 0.01 * rng.standard_normal(bands)
  noise = rng.standard_normal(clean.shape) * sigma_b
  cube = np.clip(clean * gain_b + noise, 0.0, 1.0).astype(np.float32)
  meta = {"wavelength": wl.tolist(), "endmembers": e_kb.astype(np.float32),
          "abundances": a_hwk.astype(np.float32),
          "clean": (clean * gain_b).astype(np.float32), "targets": targets,
          "n_anomaly": int(gt.sum()), "seed": seed, "noise_std": noise_std,
          "format": "synthetic", "value_range": (float(cube.min()),
                                                  float(cube.max()))}
  return Scene(cube=cube, gt=gt, name=name, source="synthetic", metadata=meta)
