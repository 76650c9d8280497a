"""The paper's quantities on a model: sensitivity (Eq. 1, 2, 11), importance (Eq. 3-5),
similarity (Eq. 6-10), per-target lists, regions of interest and suppression."""
