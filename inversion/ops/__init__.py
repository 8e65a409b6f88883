"""Kernels used by the blocks in :mod:`inversion.modules`: the selective scan and the
4-direction cross-scan. Kept apart from the modules (as state-spaces/mamba does) so a
faster backend can replace a kernel without touching a block."""

from inversion.ops.cross_scan import cross_merge, cross_scan
from inversion.ops.selective_scan import (
    ScanBackendUnavailable,
    scan_backend_report,
    selective_scan,
)

__all__ = [
    "ScanBackendUnavailable",
    "cross_merge",
    "cross_scan",
    "scan_backend_report",
    "selective_scan",
]
