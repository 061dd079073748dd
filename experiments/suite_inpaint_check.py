"""Do a method's strongest background responses on the suite sit in its inpainted patches?

  python experiments/suite_inpaint_check.py --suite /tmp/suite-small \
      --cells results/suite/cells --out results/suite/inpaint_check.json [--data DIR]

The suite's real-background scenes (``lrrjax suite make``) have their source
scene's labels, dilated by one pixel, inpainted. For every such scene and every
method with a score map in ``--cells`` (``<scene>__<method>.npy``, written by
``lrrjax benchmark``; not committed), this reports the share of the background
pixels above the FAR = 1e-2 threshold (:func:`lrrjax.suite.stratified.threshold`)
that lie in those patches, beside the patches' share of the background: far
above it means the method fires on the inpainting, a suite artefact. Ground
truth (the source labels and the suite's own) only locates pixels.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np
import scipy.ndimage as ndi

from lrrjax import io, provenance
from lrrjax.suite import stratified

FAR = 1e-2


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
  p.add_argument("--suite", required=True)
  p.add_argument("--cells", required=True)
  p.add_argument("--out", required=True)
  p.add_argument("--data", default=None, help="the shared scenes (default LRRJAX_DATA_DIR)")
  a = p.parse_args(argv)
  suite, cells = pathlib.Path(a.suite), pathlib.Path(a.cells)
  data = pathlib.Path(a.data) if a.data else io.data_dir()
  man = json.loads((suite / "suite.json").read_text())
  recs = []
  for s in man["scenes"]:
    if s["kind"] != "real-background":
      continue
    stem = s["file"].rsplit(".", 1)[0]
    src = io.load_scene(data / f"{s['background']['source']}.mat")
    patch = ndi.binary_dilation(src.gt.astype(bool), ndi.generate_binary_structure(2, 1))
    bg = ~io.load_scene(suite / s["file"]).gt.astype(bool)
    rec = {"scene": stem, "patch_share": float(patch[bg].mean()), "top_in_patch": {}}
    for f in sorted(cells.glob(f"{stem}__*.npy")):
      z = np.load(f)
      top = bg & (z > stratified.threshold(z[bg], FAR))
      rec["top_in_patch"][f.stem.split("__", 1)[1]] = float(patch[top].mean())
    recs.append(rec)
    print(stem, f"patch share {rec['patch_share']:.3f}",
          " ".join(f"{m} {v:.2f}" for m, v in rec["top_in_patch"].items()), flush=True)
  provenance.write_json(a.out, {"far": FAR, "records": recs, "provenance": provenance.record()})
  return 0


if __name__ == "__main__":
  sys.exit(main())
