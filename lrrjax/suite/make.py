"""`lrrjax suite make`: builds a versioned, deterministic suite folder.

For each source scene with labels whose sensor and band set (family = file-stem
prefix before the first '-', e.g. `abu`; and band count) has at least one other
labelled scene:

  real backgrounds   the scene with its labelled anomalies inpainted
                     (background.py), then targets transplanted from the
                     labelled anomalies of the *other* scenes of its group
                     (implant.py); `variants` per host, each its own seed.
  mosaics            (full) tiles of a group's backgrounds (largescene.py),
                     targets from a scene other than the tile's.
  synthetic          complex synthetic scenes (largescene.make_complex).

Scenes under 512 x 512 pixels are MATLAB v5 files with float32 `data` and
uint8 `map`; larger ones are MATLAB v7.3 (HDF5, chunked, streamable) with
int16 `data` (rounded; the sources are integer counts) and uint8 `map`. Both
are written byte-deterministically: the v5 header text is fixed and HDF5
object time stamps are off. The same seed, size and source files give the
same bytes.
"""

from __future__ import annotations

import io as _bytes_io
import os
import pathlib
import time
import zlib
from typing import Any, Callable, NamedTuple

import numpy as np

from lrrjax import io, provenance
from lrrjax.errors import ConfigError, SceneError
from lrrjax.suite import background, implant, largescene, manifest as mf

LARGE_PIXELS = 512 * 512
_MAT5_HEADER = b"MATLAB 5.0 MAT-file, written by lrrjax.suite (" + \
    mf.VERSION.encode() + b")"
_MAT73_HEADER = b"MATLAB 7.3 MAT-file, written by lrrjax.suite (" + \
    mf.VERSION.encode() + b")"


class SizePreset(NamedTuple):
  """What one `--size` makes."""
  name: str
  variants: int                  # real-background scenes per host
  targets_per_10k: float         # small targets per 10^4 pixels
  large_every: int               # one 15x15 object per this many 10^4 pixels (>= 1 per 2 hosts)
  synthetic: tuple[tuple[int, int, int], ...]   # (H, W, B) of complex synthetic scenes
  mosaic_sides: tuple[int, ...]  # mosaic side for the largest group, then the others


PRESETS = {
    "small": SizePreset("small", 1, 12.0, 2, ((128, 128, 100),), ()),
    "full": SizePreset("full", 2, 12.0, 2, ((1024, 1024, 128), (1024, 1024, 64)),
                       (1024, 512)),
}


# ------------------------------------------------------------------- writing --


def _mat5_bytes(cube_hwb: np.ndarray, gt_hw: np.ndarray) -> bytes:
  import scipy.io  # pylint: disable=import-outside-toplevel
  buf = _bytes_io.BytesIO()
  scipy.io.savemat(buf, {"data": cube_hwb, "map": gt_hw.astype(np.uint8)},
                   do_compression=False, oned_as="column")
  raw = bytearray(buf.getvalue())
  raw[:116] = _MAT5_HEADER.ljust(116, b" ")  # savemat writes the time here
  return bytes(raw)


def _write_mat73(path: pathlib.Path, cube_hwb: np.ndarray, gt_hw: np.ndarray) -> None:
  """MATLAB v7.3: HDF5 with a 512-byte user block; arrays stored transposed."""
  import h5py  # pylint: disable=import-outside-toplevel
  data = np.ascontiguousarray(cube_hwb.T)  # (B, W, H): MATLAB column-major
  with h5py.File(path, "w", userblock_size=512, libver="earliest") as f:
    chunks = (data.shape[0], min(128, data.shape[1]), min(128, data.shape[2]))
    d = f.create_dataset("data", data=data, chunks=chunks, track_times=False)
    d.attrs["MATLAB_class"] = np.bytes_(str(data.dtype).replace("float32", "single"))
    m = f.create_dataset("map", data=np.ascontiguousarray(gt_hw.astype(np.uint8).T),
                         track_times=False)
    m.attrs["MATLAB_class"] = np.bytes_("uint8")
  with open(path, "r+b") as fh:
    fh.write(_MAT73_HEADER.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02IM")


def write_scene(folder: pathlib.Path, name: str, cube_hwb: np.ndarray,
                gt_hw: np.ndarray) -> tuple[str, str]:
  """Writes `name`.mat atomically; returns (file name, sha256)."""
  fname = name + ".mat"
  tmp = folder / ("." + fname + ".tmp")
  if cube_hwb.shape[0] * cube_hwb.shape[1] >= LARGE_PIXELS:
    cube = np.clip(np.rint(cube_hwb), -32768, 32767).astype(np.int16)
    _write_mat73(tmp, cube, gt_hw)
  else:
    tmp.write_bytes(_mat5_bytes(np.asarray(cube_hwb, np.float32), gt_hw))
  os.replace(tmp, folder / fname)
  return fname, mf.sha256_file(folder / fname)


# ------------------------------------------------------------------ sources --


def family(name: str) -> str:
  """Sensor family of a source scene: its file stem up to the first '-'."""
  return name.split("-")[0]


def _rng(seed: int, name: str) -> np.random.Generator:
  return np.random.default_rng(np.random.SeedSequence(
      [int(seed), zlib.crc32(name.encode())]))


def _n_targets(h: int, w: int, preset: SizePreset, index: int) -> tuple[int, int]:
  """(small targets, 15x15 objects) for an H x W scene; `index` alternates the
  large object between small hosts."""
  n_small = max(1, int(round(preset.targets_per_10k * h * w / 1e4)))
  per = h * w / 1e4 / preset.large_every
  n_large = int(round(per)) if per >= 1 else int(index % preset.large_every == 0)
  return n_small, n_large


def _check_out(out: pathlib.Path, want: dict[str, Any]) -> dict[str, Any] | None:
  """The existing manifest when `out` already holds exactly this suite (verified),
  None when `out` is absent or empty; else raises."""
  if not out.exists():
    return None
  if not out.is_dir():
    raise ConfigError(f"suite output {out} exists and is not a folder")
  if not (out / mf.MANIFEST).exists():
    if any(out.iterdir()):
      raise ConfigError(f"suite output {out} is not empty and holds no "
                        f"{mf.MANIFEST}; refusing to write into it")
    return None
  try:
    have = mf.read_manifest(out)
  except SceneError as e:
    raise ConfigError(f"suite output {out} already holds a different suite: {e}; "
                      f"choose another folder or delete it") from e
  diff = [k for k in want if have.get(k) != want[k]]
  if diff:
    raise ConfigError(
        f"suite output {out} already holds a different suite ("
        + ", ".join(f"{k}: {have.get(k)!r} there, {want[k]!r} asked"
                    if k != "sources" else "other source files" for k in diff)
        + "); choose another folder or delete it")
  return mf.verify(out)


def make_suite(out: str | os.PathLike, data_dir: str | os.PathLike | None = None,
               seed: int = 0, size: str = "small", scenes: list[str] | None = None,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
  """Makes (or confirms) the suite in `out`; returns its manifest.

  Args:
    out: output folder: absent, empty, or holding this very suite (then it is
      verified and left untouched).
    data_dir: folder of the source scenes (default io.data_dir()).
    seed: suite seed; the same seed, size and sources give byte-identical files.
    size: "small" or "full" (PRESETS).
    scenes: optional host scene names; a named scene that cannot host a
      transplant is an error (by default such scenes are listed as excluded).
    progress: optional callable taking one line per scene written.

  Raises:
    ConfigError: unknown size, or `out` holds something else (another suite
      version, seed, size or sources; a non-suite folder; changed files).
    SceneError: no source scenes, or a named scene cannot host a transplant.
  """
  if size not in PRESETS:
    raise ConfigError(f"unknown suite size {size!r}; use {' or '.join(PRESETS)}")
  preset = PRESETS[size]
  say = progress or (lambda _msg: None)
  data_dir = pathlib.Path(data_dir) if data_dir is not None else io.data_dir()
  if mf.find_suite(data_dir) is not None:
    raise ConfigError(f"{data_dir} is a suite folder; make a suite from the "
                      f"original scenes")
  paths = io.list_scenes(data_dir)
  if not paths:
    raise SceneError(f"no scenes in {data_dir}")
  sources = [{"name": p.stem, "sha256": mf.sha256_file(p), "family": family(p.stem)}
             for p in paths]
  want = {"version": mf.VERSION, "seed": int(seed), "size": size,
          "sources": sources, "hosts_asked": list(scenes) if scenes else None}
  out = pathlib.Path(out)
  existing = _check_out(out, want)
  if existing is not None:
    say(f"{out}: this suite is already there and matches its manifest")
    return existing
  t0 = time.perf_counter()
  loaded = {p.stem: io.load_scene(p) for p in paths}
  groups: dict[tuple[str, int], list[str]] = {}
  for name, sc in loaded.items():
    if sc.gt is not None and sc.gt.any():
      groups.setdefault((family(name), sc.bands), []).append(name)

  excluded, hosts = [], []
  for name, sc in loaded.items():
    key = (family(name), sc.bands)
    if sc.gt is None or not sc.gt.any():
      reason = "no labelled anomalies: cannot be cleaned of them"
    elif len(groups.get(key, [])) < 2:
      reason = (f"no other labelled scene of family {key[0]!r} with {key[1]} bands "
                f"to take anomaly spectra from")
    else:
      hosts.append(name)
      continue
    if scenes and name in scenes:
      raise SceneError(f"scene {name!r} ({sc.shape[0]}x{sc.shape[1]}x{sc.bands}) "
                       f"cannot host a transplant: {reason}")
    excluded.append({"name": name, "reason": reason})
  if scenes:
    missing = [n for n in scenes if n not in loaded]
    if missing:
      raise SceneError(f"scene(s) {', '.join(missing)} not in {data_dir}")
    excluded += [{"name": n, "reason": "not asked for (--scenes)"}
                 for n in hosts if n not in scenes]
    hosts = [n for n in hosts if n in scenes]
  if not hosts:
    raise SceneError(f"no scene in {data_dir} can host a transplant (each needs "
                     f"another labelled scene of its family and band count)")

  donors = {n: implant.donor_components(n, loaded[n].cube, loaded[n].gt)
            for g in groups.values() if len(g) > 1 for n in g}
  cleaned: dict[str, background.Inpainted] = {}

  def clean(n: str) -> background.Inpainted:
    if n not in cleaned:  # each scene's own generator: independent of the order
      cleaned[n] = background.inpaint(loaded[n].cube, loaded[n].gt,
                                      _rng(seed, "bg:" + n))
    return cleaned[n]

  out.mkdir(parents=True, exist_ok=True)
  records = []

  def emit(name, kind, cube, gt, bg_info, targets):
    fname, digest = write_scene(out, name, cube, gt)
    records.append({"file": fname, "sha256": digest, "kind": kind,
                    "shape": [int(v) for v in cube.shape], "background": bg_info,
                    "n_targets": len(targets), "anomaly_pixels": int(gt.sum()),
                    "targets": targets})
    say(f"wrote {fname} ({kind}, {cube.shape[0]}x{cube.shape[1]}x{cube.shape[2]}, "
        f"{len(targets)} targets)")

  index = 0
  for host in hosts:
    key = (family(host), loaded[host].bands)
    pool = {n: donors[n] for n in groups[key] if n != host}
    bg = clean(host)
    for v in range(preset.variants):
      name = f"bg-{host}-v{v}"
      rng = _rng(seed, name)
      h, w = bg.cube.shape[:2]
      specs = implant.plan(rng, *_n_targets(h, w, preset, index))
      index += 1
      cube, gt, targets = implant.implant_targets(
          rng, bg.cube, bg.filled, specs,
          lambda r_, *_a, _p=pool, _h=host: implant.pick_donor(r_, _p, {_h}, _h))
      emit(name, "real-background", cube, gt,
           {"source": host, "inpainted_pixels": int(bg.filled.sum()),
            "inpainting": "normalised convolution of the known ring + noise "
                          "texture; labels dilated by 1 pixel"}, targets)

  big_groups = sorted(((k, m) for k, m in groups.items() if len(m) > 1),
                      key=lambda kv: (-len(kv[1]), kv[0]))
  for gi, (key, members) in enumerate(big_groups if preset.mosaic_sides else []):
    side = preset.mosaic_sides[min(gi, len(preset.mosaic_sides) - 1)]
    name = f"mosaic-{key[0]}-{key[1]}b-{side}x{side}"
    rng = _rng(seed, name)
    tiles = [(n, clean(n).cube, clean(n).filled) for n in sorted(members)]
    mos = largescene.mosaic(rng, tiles, side, side)
    pool = {n: donors[n] for n in members}

    def from_other_tile(r_, row, col, s, _m=mos, _p=pool, _name=name):
      under = {_m.names[k] for k in np.unique(_m.source[row:row + s, col:col + s])}
      return implant.pick_donor(r_, _p, under, _name)

    specs = implant.plan(rng, *_n_targets(side, side, preset, 0))
    cube, gt, targets = implant.implant_targets(rng, mos.cube, mos.blocked, specs,
                                                from_other_tile)
    emit(name, "mosaic", cube, gt, {"sources": sorted(members), **mos.info}, targets)

  for (h, w, b) in preset.synthetic:
    name = f"synthetic-{h}x{w}x{b}"
    rng = _rng(seed, name)
    syn, info = largescene.make_complex(rng, h, w, b)
    maker = info.pop("target_spectra")
    specs = implant.plan(rng, *_n_targets(h, w, preset, 0))
    cube, gt, targets = implant.implant_targets(
        rng, syn.cube, syn.blocked, specs,
        lambda r_, _r, _c, s, _mk=maker: (_mk(r_, s * s), {"synthetic": "material "
                                                          "mixture + narrow features"}))
    emit(name, "synthetic", cube, gt, {"generator": "lrrjax.suite.largescene."
                                       "make_complex", **info}, targets)

  manifest = {**want, "training": {"allowed": False, "reason": mf.TRAINING_NOTE},
              "excluded": excluded,
              "strata": {"sizes": list(implant.SIZES) + [implant.LARGE],
                         "fill_bins": [list(b) for b in implant.FILL_BINS]},
              "scenes": records}
  mf.write_manifest(out, manifest)
  provenance.write_json(out / "provenance.json",
                        {"seconds": time.perf_counter() - t0,
                         "provenance": provenance.record(seed=seed)})
  return manifest


def composition(manifest: dict[str, Any]) -> dict[str, int]:
  """Target counts per stratum (`size=KxK`, fill bin, context) over the suite."""
  counts: dict[str, int] = {}
  for rec in manifest["scenes"]:
    for t in rec["targets"]:
      for key in (f"size={t['size']}x{t['size']}", implant.fill_bin_of(t["fill"]),
                  f"context={t['context']}"):
        counts[key] = counts.get(key, 0) + 1
  return counts
