"""ENVI reader: text ``.hdr`` header plus raw binary data (BSQ/BIL/BIP)."""

from __future__ import annotations

import pathlib
from typing import Any, NamedTuple

import numpy as np

from lrrjax.errors import SceneError
from lrrjax.io._util import PathLike, _check_exists

ENVI_DATA_EXTS = (".img", ".dat", ".raw", ".bsq", ".bil", ".bip", "")


# ENVI "data type" codes -> numpy kind (byte order applied separately).
ENVI_DTYPES = {
    1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8",
    15: "u8",
}
ENVI_COMPLEX = {6: "complex64", 9: "complex128"}


def parse_envi_header(text: str, path: PathLike = "<header>") -> dict[str, Any]:
  """Parses ENVI header text into ``{lower-case key: str | list[str]}``.

  ``key = value`` lines; a value in braces may span lines and becomes a list
  of its comma-separated, stripped items (``description`` stays one string).
  Lines starting with ``;`` are comments.

  Raises:
    SceneError: the text does not start with ``ENVI`` or a brace is unclosed.
  """
  lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
  i = 0
  while i < len(lines) and not lines[i].strip():
    i += 1
  if i >= len(lines) or lines[i].strip().upper() != "ENVI":
    raise SceneError(f"{path}: not an ENVI header (first line must be 'ENVI')")
  out: dict[str, Any] = {}
  i += 1
  while i < len(lines):
    line = lines[i]
    i += 1
    if not line.strip() or line.lstrip().startswith(";") or "=" not in line:
      continue
    key, value = line.split("=", 1)
    key = " ".join(key.strip().lower().split())
    value = value.strip()
    if value.startswith("{"):
      while "}" not in value:
        if i >= len(lines):
          raise SceneError(f"{path}: unclosed '{{' in the value of {key!r}")
        value += "\n" + lines[i]
        i += 1
      inner = value[1:value.rindex("}")]
      if key == "description":
        out[key] = " ".join(inner.split())
      else:
        out[key] = [s.strip() for s in inner.split(",") if s.strip()]
    else:
      out[key] = value
  return out


def _envi_paths(path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path | None]:
  """(header, data file or None when not found) for a .hdr or binary path."""
  if path.suffix.lower() == ".hdr":
    return path, None
  for hdr in (path.with_name(path.name + ".hdr"), path.with_suffix(".hdr"),
              path.with_suffix(".HDR")):
    if hdr.exists() and hdr != path:
      return hdr, path
  raise SceneError(
      f"{path}: unknown scene format (extension {path.suffix or '(none)'!r}) "
      f"and no ENVI header {path.with_suffix('.hdr').name!r} next to it; "
      f"supported: .mat (v5/v7.3), .npy, .npz, ENVI .hdr + binary")


def _envi_int(header: dict, key: str, hdr: pathlib.Path, default=None) -> int:
  if key not in header:
    if default is None:
      raise SceneError(f"{hdr}: ENVI header lacks required field {key!r}")
    return default
  try:
    return int(str(header[key]).strip())
  except ValueError as e:
    raise SceneError(
        f"{hdr}: ENVI field {key!r} = {header[key]!r} is not an integer") from e


class EnviLayout(NamedTuple):
  """Where and how an ENVI cube lies in its data file (sizes checked)."""
  header_file: pathlib.Path
  data_file: pathlib.Path
  dtype: np.dtype          # with the file's byte order
  lines: int               # H
  samples: int             # W
  bands: int               # B
  offset: int              # header offset, bytes
  interleave: str          # bsq, bil or bip
  meta: dict               # format facts, wavelength, band names


def envi_layout(path: pathlib.Path) -> EnviLayout:
  """Parses and checks an ENVI header and the size of its data file.

  Raises:
    SceneError: missing header/data, bad fields, or a data file whose size
      differs from ``offset + H * W * B * itemsize`` (truncated or too large).
  """
  hdr, data_path = _envi_paths(path)
  _check_exists(hdr)
  try:
    text = hdr.read_text(encoding="utf-8", errors="replace")
  except OSError as e:
    raise SceneError(f"{hdr}: cannot read ENVI header: {e}") from e
  header = parse_envi_header(text, hdr)
  samples = _envi_int(header, "samples", hdr)
  lines = _envi_int(header, "lines", hdr)
  bands = _envi_int(header, "bands", hdr)
  code = _envi_int(header, "data type", hdr)
  offset = _envi_int(header, "header offset", hdr, default=0)
  order = _envi_int(header, "byte order", hdr, default=0)
  interleave = str(header.get("interleave", "bsq")).strip().lower()
  if code in ENVI_COMPLEX:
    raise SceneError(
        f"{hdr}: ENVI data type {code} ({ENVI_COMPLEX[code]}) is complex; only "
        f"real data types {sorted(ENVI_DTYPES)} are supported")
  if code not in ENVI_DTYPES:
    raise SceneError(
        f"{hdr}: unknown ENVI data type {code}; supported {sorted(ENVI_DTYPES)}")
  if order not in (0, 1):
    raise SceneError(f"{hdr}: ENVI byte order must be 0 or 1, got {order}")
  if interleave not in ("bsq", "bil", "bip"):
    raise SceneError(
        f"{hdr}: ENVI interleave {interleave!r} not one of bsq, bil, bip")
  if min(samples, lines, bands) <= 0 or offset < 0:
    raise SceneError(
        f"{hdr}: bad ENVI dimensions samples={samples} lines={lines} "
        f"bands={bands} header offset={offset}")
  if data_path is None:
    candidates = []
    if "data file" in header:
      df = pathlib.Path(str(header["data file"]).strip())
      candidates.append(df if df.is_absolute() else hdr.parent / df)
    candidates += [hdr.with_suffix(e) for e in ENVI_DATA_EXTS]
    candidates += [hdr.with_suffix(e.upper()) for e in ENVI_DATA_EXTS if e]
    data_path = next((c for c in candidates if c.is_file()), None)
    if data_path is None:
      raise SceneError(
          f"{hdr}: ENVI data file not found; tried "
          + ", ".join(c.name for c in candidates))
  _check_exists(data_path)
  dtype = np.dtype(("<" if order == 0 else ">") + ENVI_DTYPES[code])
  count = samples * lines * bands
  need = offset + count * dtype.itemsize
  size = data_path.stat().st_size
  if size != need:
    what = "truncated" if size < need else "larger than the header says"
    raise SceneError(
        f"{data_path}: ENVI data file is {what}: {size} bytes, expected {need} "
        f"(header offset {offset} + {lines} lines x {samples} samples x "
        f"{bands} bands x {dtype.itemsize} bytes, from {hdr.name})")
  meta = {"format": "envi", "interleave": interleave, "byte_order": order,
          "envi_data_type": code, "header_file": str(hdr),
          "data_file": str(data_path)}
  if "wavelength" in header and len(header["wavelength"]) == bands:
    try:
      meta["wavelength"] = [float(w) for w in header["wavelength"]]
    except ValueError:
      pass
  if "wavelength units" in header:
    meta["wavelength_units"] = str(header["wavelength units"])
  if "band names" in header:
    meta["band_names"] = list(header["band names"])
  return EnviLayout(hdr, data_path, dtype, lines, samples, bands, offset,
                    interleave, meta)


def _read_envi(path: pathlib.Path) -> tuple[dict[str, np.ndarray], dict]:
  lay = envi_layout(path)
  data_path, dtype, offset = lay.data_file, lay.dtype, lay.offset
  lines, samples, bands, interleave = lay.lines, lay.samples, lay.bands, lay.interleave
  count = samples * lines * bands
  try:
    flat = np.fromfile(str(data_path), dtype=dtype, count=count, offset=offset)
  except Exception as e:  # pylint: disable=broad-except
    raise SceneError(f"{data_path}: cannot read ENVI data: {e}") from e
  if interleave == "bsq":
    cube = flat.reshape(bands, lines, samples).transpose(1, 2, 0)
  elif interleave == "bil":
    cube = flat.reshape(lines, bands, samples).transpose(0, 2, 1)
  else:
    cube = flat.reshape(lines, samples, bands)
  cube = np.ascontiguousarray(cube.astype(dtype.newbyteorder("="), copy=False))
  return {"cube": cube}, dict(lay.meta)
