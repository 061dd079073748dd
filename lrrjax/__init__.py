"""lrrjax: hyperspectral anomaly detection in JAX/Flax.

LRR-Net+ (a deep-unfolded, dictionary-learnable low-rank representation network)
and the classical detectors the field compares against.
"""

__version__ = "0.1.0"
