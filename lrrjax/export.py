"""The generalised LRR-Net+ as a standalone ``jax.export`` artifact.

:func:`export_detector` serialises ``scores_hw = f(cube_hwb)`` (float32 H x W x B
in, float32 H x W out; H, W and B symbolic, so one file serves every sensor and
scene size). The trained parameters are constants inside the function, and the
scene-side steps run inside it too (global min-max normalisation, band noise,
k-means dictionary: :func:`lrrjax.lrr.general.scene_context`), so

    f(cube) == lrrjax.lrr.cross.score_cube(model, cfg, cube)

by construction (the same traced code; tested to 1e-4 relative).

File layout (``FORMAT``, ``VERSION``)::

    b"lrrjax-exported-detector <VERSION>\\n"   magic line
    b"<one line of JSON metadata>\\n"          config, platforms, versions, tiling note
    <bytes of jax.export.Exported.serialize()>

A pipeline needs only ``jax``::

    _, _, blob = open(FILE, "rb").read().split(b"\\n", 2)
    detector = jax.export.deserialize(bytearray(blob))
    scores_hw = detector.call(cube_hwb.astype("float32"))

Scenes larger than memory: the scores are relative to the scene the function
sees (its min-max, band noise, dictionary and median residual), so a pipeline
that tiles a large scene calls ``f`` per tile and gets per-tile scores, each
ranked within its own tile (the network's receptive field is the whole tile;
tiles of at least 64 x 64 pixels, the training crop size, are what it was
trained on). :data:`TILING` is stored in the metadata.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from lrrjax import provenance
from lrrjax.errors import ConfigError
from lrrjax.lrr import cross, general

FORMAT = "lrrjax-exported-detector"
VERSION = 1
PLATFORMS = ("cpu", "cuda", "tpu")
SHAPE = "h, w, b"
_ROWS = 256  # general.band_noise's max_rows
# Band noise uses horizontal neighbours (w >= 2) of min(h, 256) rows; jax's
# symbolic solver cannot prove min(h, 256) (w - 1) >= 1 from w >= 2 alone.
CONSTRAINTS = ("w >= 2", f"w*min(h, {_ROWS}) >= min(h, {_ROWS}) + 1")
TILING = ("scores are relative to the cube passed in (its min-max, band noise, "
          "dictionary, median residual); for a scene larger than memory call f per "
          "tile (>= 64 x 64 pixels, the training crop) and read each tile's scores "
          "as a ranking within that tile")


def constraints(cfg) -> tuple[str, ...]:
  """:data:`CONSTRAINTS` and ``h w >= K`` (at least as many pixels as atoms, which
  also decides the Gram side of the singular value thresholding)."""
  k = int(cfg.net.n_clusters) * int(cfg.net.per_cluster)
  return CONSTRAINTS + (f"h*w >= {k}",)


class LoadedDetector(NamedTuple):
  """An export file read back: the function and the header's metadata."""
  exported: jax.export.Exported
  meta: dict[str, Any]


def detector_fn(model: general.GeneralLRRNet, cfg):
  """The pure function ``scores_hw = f(cube_hwb)`` of a network and its config."""
  graphdef, state = nnx.split(model)
  kw = cross.context_kwargs(cfg)

  def f(cube_hwb):
    h, w, _ = cube_hwb.shape
    ctx = general.scene_context(cube_hwb, **kw)
    return nnx.merge(graphdef, state)(ctx, h, w).scores_n.reshape(h, w)

  return f


def parse_platforms(text: str | Sequence[str]) -> tuple[str, ...]:
  """``"cpu,cuda,tpu"`` -> ``("cpu", "cuda", "tpu")``; ConfigError on an unknown one."""
  items = text.split(",") if isinstance(text, str) else list(text)
  out = tuple(p.strip().lower() for p in items if p.strip())
  bad = [p for p in out if p not in ("cpu", "cuda", "rocm", "tpu")]
  if not out or bad or len(set(out)) != len(out):
    raise ConfigError(f"--platforms {text!r}: give distinct names from cpu, cuda, rocm, tpu")
  return out


def lower_detector(model: general.GeneralLRRNet, cfg,
                   platforms: Sequence[str] = PLATFORMS) -> jax.export.Exported:
  """``jax.export`` of :func:`detector_fn` for ``platforms``, H, W, B symbolic."""
  shape = jax.export.symbolic_shape(SHAPE, constraints=constraints(cfg))
  spec = jax.ShapeDtypeStruct(shape, jnp.float32)
  return jax.export.export(jax.jit(detector_fn(model, cfg)),
                           platforms=tuple(platforms))(spec)


def metadata(cfg, platforms: Sequence[str], source: str | None = None) -> dict[str, Any]:
  """The header's JSON: format, version, shapes, constraints, config, tiling, provenance."""
  prov = provenance.record(config=cfg, seed=int(cfg.seed))
  return {"format": FORMAT, "version": VERSION, "platforms": list(platforms),
          "input": "float32[h, w, b] raw cube",
          "constraints": list(constraints(cfg)), "output": "float32[h, w] scores",
          "config": cfg.to_dict(), "parameters": source, "tiling": TILING,
          "provenance": prov}


def serialize(exported: jax.export.Exported, meta: dict[str, Any]) -> bytes:
  """Magic line, one JSON line, then ``exported.serialize()``."""
  head = f"{FORMAT} {VERSION}\n".encode() + json.dumps(meta, sort_keys=True,
                                                      default=str).encode() + b"\n"
  return head + bytes(exported.serialize())


def export_detector(model: general.GeneralLRRNet, cfg, platforms: Sequence[str] = PLATFORMS,
                    source: str | None = None) -> bytes:
  """The content of an export file: :func:`lower_detector` serialised with its header
  (``source``: the parameter file, recorded in the metadata)."""
  return serialize(lower_detector(model, cfg, platforms), metadata(cfg, platforms, source))


def write_export(out, model, cfg, platforms: Sequence[str] = PLATFORMS,
                 source: str | None = None) -> pathlib.Path:
  """Writes :func:`export_detector` to ``out``."""
  out = pathlib.Path(out)
  data = export_detector(model, cfg, platforms, source)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_bytes(data)
  return out


def parse(data: bytes, name: str = "<bytes>") -> LoadedDetector:
  """Reads an export file's content; ConfigError (naming ``name``) when it is not one
  of this version."""
  parts = data.split(b"\n", 2)
  magic = parts[0].decode("utf-8", "replace").split(" ")
  if magic[0] != FORMAT:
    raise ConfigError(f"{name}: not an lrrjax exported detector (no "
                      f"{FORMAT!r} header)")
  if len(magic) != 2 or magic[1] != str(VERSION):
    raise ConfigError(f"{name}: exported detector format version "
                      f"{' '.join(magic[1:])!r}; this lrrjax reads version {VERSION} "
                      "(export it again with this lrrjax)")
  if len(parts) < 3:
    raise ConfigError(f"{name}: truncated exported detector (header without function)")
  try:
    meta = json.loads(parts[1])
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ConfigError(f"{name}: corrupt exported detector metadata ({e})") from None
  try:
    exported = jax.export.deserialize(bytearray(parts[2]))
  except Exception as e:  # pylint: disable=broad-exception-caught  # flatbuffer/version errors vary
    raise ConfigError(f"{name}: jax {jax.__version__} cannot read the serialised "
                      f"function ({type(e).__name__}: {e})") from None
  return LoadedDetector(exported, meta)


def load_detector(path) -> LoadedDetector:
  """Reads an export file (the lrrjax helper; a pipeline needs only the three
  lines of jax in the module docstring)."""
  path = pathlib.Path(path)
  try:
    data = path.read_bytes()
  except FileNotFoundError:
    raise ConfigError(f"{path}: exported detector not found") from None
  except OSError as e:
    raise ConfigError(f"{path}: cannot read exported detector ({e})") from None
  return parse(data, str(path))


def parameters_file(checkpoint=None) -> pathlib.Path:
  """``--checkpoint DIR`` -> ``DIR/lrrnet_plus.json`` (a file is taken as is);
  none -> the packaged pretrained parameters."""
  if checkpoint is None:
    return cross.DEFAULT_PRETRAINED
  p = pathlib.Path(checkpoint)
  return p / cross.WORKDIR_FILE if p.is_dir() else p
