"""LRR core: proximal operators, the ADMM solver and the unrolled LRR-Net+."""
