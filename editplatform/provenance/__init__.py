"""Provenance that travels with every released output.

A signed C2PA manifest (manifest.py), an invisible watermark whose key resolves to the
job through a lookup table (watermark.py, models.WatermarkKey), and perceptual
fingerprints indexed for near-match search (fingerprint.py, index.py). services.py ties
them to jobs and the audit log: `mark_output` when outputs are released, `check_image`
to answer "was this made here?".
"""
