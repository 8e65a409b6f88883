"""Latent editing: named directions, GANSpace, and the catalog of allowed edits.

* :mod:`~inversion.editing.directions` — direction tensors (W or W+), loading them from
  files with validation, applying them to W+ codes over a layer range;
* :mod:`~inversion.editing.ganspace` — unsupervised directions from PCA of W samples;
* :mod:`~inversion.editing.catalog` — the edits a deployment offers (names, ranges,
  which are sensitive and need approval) and validation of edit requests.

Submodules are imported on use; this file stays import-light.
"""
