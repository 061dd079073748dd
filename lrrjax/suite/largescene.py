"""Large backgrounds: mosaics of real backgrounds and complex synthetic scenes.

Mosaic. Tiles of the anomaly-free backgrounds (background.inpaint) of scenes
sharing one sensor and band set, each cropped to the common tile size, flipped
and rotated at random, laid out on a grid and cropped to (H, W). A per-pixel
source map records which scene each pixel came from, so a target implanted on
a tile takes its spectrum from another scene; the two pixels along every seam
are blocked, so no target straddles two tiles.

Synthetic complex scene (``make_complex``). Linear mixing of ``K`` materials
(lrrjax.synthetic's smooth spectra) with abundances from low-resolution random
fields upsampled (many regions, mixed borders), then

  ``y(r, c, b) = g(r, c) * [sum_k a_k(r, c) e_k(b)] * s(r, c) + sigma_b n + o_{c, b}``:

* large bright structures: rectangles (buildings, 12..80 px a side) of a
  bright, flat material, and a few long 3..6 px wide roads;
* shadows ``s = 0.35`` in the parallelogram each building casts along one
  sun direction;
* illumination ``g``: a smooth field in [0.85, 1.15];
* band-dependent noise ``sigma_b``: higher at both ends and in the 1400 / 1900
  nm water-vapour bands;
* striping ``o_{c, b}``: per-column offsets in a fifth of the bands;
* dead bands: a few bands holding only low-level noise.

Values are reflectance x 10000 (like the AVIRIS ABU scenes), stored as int16.
Targets are synthetic spectra (a material mixture plus narrow absorption or
emission features) with the scene's band noise ``sigma_b`` added per target
pixel, like an observed donor pixel (without it a sub-pixel mixture would be
less noisy than its neighbours and score *below* the background), implanted
like the transplants (implant.py).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import ndimage

from lrrjax import synthetic
from lrrjax.errors import ConfigError

SCALE = 10000.0


class Background(NamedTuple):
  """A host background: cube, pixels no target may cover, per-pixel source index."""
  cube: np.ndarray        # (H, W, B) float32
  blocked: np.ndarray     # (H, W) bool
  source: np.ndarray      # (H, W) int16, index into `names`
  names: list[str]
  info: dict[str, Any]


def mosaic(rng: np.random.Generator, tiles: list[tuple[str, np.ndarray, np.ndarray]],
           height: int, width: int) -> Background:
  """Lays out (name, cube, blocked) tiles into an H x W mosaic (module docstring).

  Raises:
    ConfigError: fewer than two tiles, or tiles of different band counts.
  """
  if len(tiles) < 2:
    raise ConfigError(f"mosaic: needs >= 2 scenes of one band set, got {len(tiles)}")
  bands = {t[1].shape[2] for t in tiles}
  if len(bands) != 1:
    raise ConfigError(f"mosaic: tiles have different band counts {sorted(bands)}")
  side = min(min(t[1].shape[:2]) for t in tiles)
  nr, nc = -(-height // side), -(-width // side)
  b = bands.pop()
  cube = np.empty((nr * side, nc * side, b), np.float32)
  blocked = np.zeros((nr * side, nc * side), bool)
  src = np.zeros((nr * side, nc * side), np.int16)
  layout = []
  for i in range(nr * nc):
    k = i % len(tiles) if i < len(tiles) else int(rng.integers(0, len(tiles)))
    name, c_hwb, m_hw = tiles[k]
    c_hwb, m_hw = c_hwb[:side, :side], m_hw[:side, :side]
    rot, flip = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
    c_hwb, m_hw = np.rot90(c_hwb, rot), np.rot90(m_hw, rot)
    if flip:
      c_hwb, m_hw = c_hwb[:, ::-1], m_hw[:, ::-1]
    r, c = divmod(i, nc)
    cube[r * side:(r + 1) * side, c * side:(c + 1) * side] = c_hwb
    blocked[r * side:(r + 1) * side, c * side:(c + 1) * side] = m_hw
    src[r * side:(r + 1) * side, c * side:(c + 1) * side] = k
    layout.append({"tile": i, "scene": name, "rot90": rot, "flip": flip})
  for k in range(1, nr):  # no target straddles two tiles (two source scenes)
    blocked[k * side - 1:k * side + 1] = True
  for k in range(1, nc):
    blocked[:, k * side - 1:k * side + 1] = True
  return Background(cube[:height, :width], blocked[:height, :width],
                    src[:height, :width], [t[0] for t in tiles],
                    {"tile": side, "layout": layout})


def _fields(rng: np.random.Generator, h: int, w: int, k: int, cell: int) -> np.ndarray:
  """(K, H, W) smooth random fields: Gaussian noise on a coarse grid, upsampled."""
  gh, gw = -(-h // cell) + 2, -(-w // cell) + 2
  coarse = ndimage.gaussian_filter(rng.standard_normal((k, gh, gw)), (0, 0.7, 0.7))
  fine = ndimage.zoom(coarse, (1, cell, cell), order=1)
  return fine[:, cell:cell + h, cell:cell + w].astype(np.float32)


def _band_noise(wl: np.ndarray, level: float) -> np.ndarray:
  u = (wl - wl.mean()) / (0.5 * (wl[-1] - wl[0]))
  water = (np.exp(-0.5 * ((wl - 1400.0) / 40.0) ** 2)
           + np.exp(-0.5 * ((wl - 1900.0) / 50.0) ** 2))
  return level * (0.6 + 0.8 * u ** 2 + 3.0 * water)


def make_complex(rng: np.random.Generator, height: int, width: int, bands: int,
                 n_materials: int = 12, noise: float = 0.004) -> tuple[Background, dict]:
  """A complex synthetic background (module docstring) and its target-spectrum maker.

  Returns:
    (Background with values in reflectance x 10000, info) where
    info["target_spectra"](rng, n) -> (n, B) spectra for targets.

  Raises:
    ConfigError: too small a scene or too few bands.
  """
  if min(height, width) < 64 or bands < 16 or n_materials < 2:
    raise ConfigError(f"make_complex: needs >= 64 x 64 pixels, >= 16 bands, >= 2 "
                      f"materials; got {height}x{width}x{bands}, {n_materials}")
  wl = np.linspace(400.0, 2500.0, bands)
  e_kb = synthetic.smooth_spectra(rng, wl, n_materials).astype(np.float32)
  cell = max(8, min(height, width) // 24)
  logits = 3.0 * _fields(rng, height, width, n_materials, cell)
  logits -= logits.max(axis=0, keepdims=True)
  a = np.exp(logits)
  a /= a.sum(axis=0, keepdims=True)
  clean = np.tensordot(a.transpose(1, 2, 0), e_kb, axes=1)   # (H, W, B)
  del a, logits

  bright_e = (0.55 + 0.1 * rng.random()) * np.ones(bands, np.float32) \
      + 0.05 * np.sin(wl / 300.0).astype(np.float32)
  shade = np.ones((height, width), np.float32)
  built = np.zeros((height, width), bool)
  n_build = max(2, int(height * width / 40000))
  sun = rng.uniform(0, 2 * np.pi)
  dr, dc = np.sin(sun), np.cos(sun)
  for _ in range(n_build):
    bh, bw = (int(v) for v in rng.integers(12, 81, size=2))
    bh, bw = min(bh, height // 4), min(bw, width // 4)
    r = int(rng.integers(0, height - bh))
    c = int(rng.integers(0, width - bw))
    clean[r:r + bh, c:c + bw] = bright_e * (0.9 + 0.2 * rng.random())
    built[r:r + bh, c:c + bw] = True
    length = int(rng.integers(5, 16))
    for step in range(1, length + 1):  # shadow: the footprint shifted along the sun
      rr, cc = int(round(r + dr * step)), int(round(c + dc * step))
      r0, r1 = max(rr, 0), min(rr + bh, height)
      c0, c1 = max(cc, 0), min(cc + bw, width)
      if r0 < r1 and c0 < c1:
        shade[r0:r1, c0:c1] = 0.35
  shade[built] = 1.0
  for _ in range(max(1, n_build // 3)):  # roads
    wd = int(rng.integers(3, 7))
    if rng.random() < 0.5:
      r = int(rng.integers(0, height - wd))
      clean[r:r + wd] = 0.7 * bright_e
      built[r:r + wd] = True
    else:
      c = int(rng.integers(0, width - wd))
      clean[:, c:c + wd] = 0.7 * bright_e
      built[:, c:c + wd] = True
  illum = 1.0 + 0.15 * np.tanh(_fields(rng, height, width, 1, cell * 4)[0])
  clean *= (illum * shade)[..., None]

  sigma_b = _band_noise(wl, noise).astype(np.float32)
  cube = clean
  for b in range(bands):  # band by band keeps the peak memory at one cube
    cube[:, :, b] += sigma_b[b] * rng.standard_normal((height, width),
                                                      dtype=np.float32)
  striped = np.sort(rng.choice(bands, size=max(1, bands // 5), replace=False))
  cube[:, :, striped] += (0.5 * sigma_b[striped]
                          * rng.standard_normal((width, striped.size),
                                                dtype=np.float32))[None]
  dead = np.sort(rng.choice(np.arange(2, bands - 2), size=max(1, bands // 40),
                            replace=False))
  cube[:, :, dead] = 0.0005 * np.abs(rng.standard_normal(
      (height, width, dead.size), dtype=np.float32)) + 0.0005
  cube *= SCALE

  def target_spectra(rng_t: np.random.Generator, n: int) -> np.ndarray:
    span = wl[-1] - wl[0]
    mix = rng_t.dirichlet(np.ones(n_materials))
    t = mix @ e_kb
    for _ in range(int(rng_t.integers(1, 3))):
      mu = rng_t.uniform(wl[0] + 0.05 * span, wl[-1] - 0.05 * span)
      wd = rng_t.uniform(0.01, 0.04) * span
      t = t + rng_t.uniform(0.03, 0.15) * rng_t.choice([-1.0, 1.0]) * np.exp(
          -0.5 * ((wl - mu) / wd) ** 2)
    t = np.clip(t, 0.01, None)
    jitter = 1.0 + 0.01 * rng_t.standard_normal((n, 1))
    noise_nb = sigma_b[None] * rng_t.standard_normal((n, bands))
    return (SCALE * (t[None] * jitter + noise_nb)).astype(np.float32)

  info = {"materials": n_materials, "buildings": n_build,
          "striped_bands": [int(v) for v in striped],
          "dead_bands": [int(v) for v in dead], "noise": noise,
          "wavelength_nm": [float(wl[0]), float(wl[-1])],
          "target_spectra": target_spectra}
  bg = Background(cube, np.zeros((height, width), bool),
                  np.zeros((height, width), np.int16), ["synthetic"], {})
  return bg, info
