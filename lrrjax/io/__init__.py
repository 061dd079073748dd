"""Scene loading, validation and normalisation.

A :class:`Scene` holds one hyperspectral cube ``cube`` of shape ``(H, W, B)``
(float32) and an optional ground-truth mask ``gt`` of shape ``(H, W)`` (bool,
True = anomaly). Pixels are ordered row-major (raster):
``x_bn = cube.reshape(H * W, B).T``.

Supported files (:func:`load_scene`):

* MATLAB ``.mat`` v4/v5/v7 (``scipy.io.loadmat``) and v7.3 (HDF5, ``h5py``).
  MATLAB writes arrays column-major, so h5py sees every v7.3 array with its
  axes reversed; they are transposed back so that a v7.3 file yields exactly
  the arrays ``scipy.io.loadmat`` gives for the same variables in a v5 file.
* NumPy ``.npy`` (the cube only; pass ``gt=`` separately) and ``.npz``
  (named arrays, detected like ``.mat`` variables).
* ENVI: a text ``.hdr`` header and a raw binary data file (BSQ, BIL or BIP
  interleave, either byte order, ``header offset``). Either path is accepted.

Which array is the cube and which the ground truth is decided by shape, not by
name (see :func:`detect_keys`); ``key=`` and ``gt_key=`` override it.
Every unusable input raises :class:`lrrjax.errors.SceneError` naming the
file, the key and the shape at fault.

The package has one module per concern: :mod:`~lrrjax.io.scene` (Scene,
normalize), :mod:`~lrrjax.io.mat`, :mod:`~lrrjax.io.npy`,
:mod:`~lrrjax.io.envi` (readers), :mod:`~lrrjax.io.validate` (key detection,
value checks, constant bands), :mod:`~lrrjax.io.load` (read_arrays,
load_scene, inspect_file) and :mod:`~lrrjax.io.folders` (data_dir,
list_scenes). Every public name is re-exported here.
"""

from lrrjax.io._util import PathLike
from lrrjax.io.bands import parse_band_list, select_bands
from lrrjax.io.envi import (ENVI_COMPLEX, ENVI_DATA_EXTS, ENVI_DTYPES,
                            parse_envi_header)
from lrrjax.io.folders import SCENE_EXTS, data_dir, list_scenes
from lrrjax.io.load import inspect_file, load_scene, read_arrays
from lrrjax.io.mat import MAT_EXTS
from lrrjax.io.scene import Scene, normalize
from lrrjax.io.validate import (GT_NAMES, constant_bands, detect_keys,
                                drop_constant_bands, validate_cube)

__all__ = [
    "ENVI_COMPLEX", "ENVI_DATA_EXTS", "ENVI_DTYPES", "GT_NAMES", "MAT_EXTS",
    "PathLike", "SCENE_EXTS", "Scene", "constant_bands", "data_dir",
    "detect_keys", "drop_constant_bands", "inspect_file", "list_scenes",
    "load_scene", "normalize", "parse_band_list", "parse_envi_header",
    "read_arrays", "select_bands",
    "validate_cube",
]
