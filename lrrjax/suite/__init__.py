"""A complex-scene benchmark suite built from the shared scenes (never training data).

  manifest.py     suite.json: version, files + sha256, targets; check_not_suite
  background.py   labelled anomalies replaced by a local background estimate
  implant.py      transplanted targets of known size, fill fraction and spectrum
  largescene.py   mosaics of real backgrounds and complex synthetic scenes
  make.py         `lrrjax suite make`: the deterministic suite folder
  stratified.py   Pd at fixed false-alarm rates per size / fill / context stratum
"""

from lrrjax.suite.manifest import (MANIFEST, VERSION, check_not_suite, find_suite,
                                   is_suite, read_manifest, verify)

__all__ = ["MANIFEST", "VERSION", "check_not_suite", "find_suite", "is_suite",
           "read_manifest", "verify"]
