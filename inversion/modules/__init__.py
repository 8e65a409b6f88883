"""Network modules (blocks and models), built from the kernels in ``inversion.ops``.

Nothing is imported here on purpose: ``import inversion.modules.stylegan2`` must not pay
for the encoder's modules and vice versa.
"""
