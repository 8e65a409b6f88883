"""The approval hook: how the jobs layer asks "is this job approved?" without knowing who decides.

Jobs sit below approvals, so they cannot import the four-eyes rules. The approvals app
registers its check here from ``AppConfig.ready()``; the worker asks through
:func:`is_approved`. With no hook registered, nothing that needs an approval is ever
approved: jobs fail closed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

ApprovalCheck = Callable[[object], bool]  # (job) -> does it hold the approvals it needs?

_check: ApprovalCheck | None = None


def register(check: ApprovalCheck | None) -> None:
    """Install the approvals app's check (None removes it, e.g. in a test)."""
    global _check
    _check = check


def get() -> ApprovalCheck | None:
    return _check


def is_approved(job) -> bool:
    """The registered check's answer; False (fail closed) when none is registered."""
    check = _check
    if check is None:
        logger.error(
            "job %s needs an approval but no approval hook is registered; it will not run", job.pk
        )
        return False
    return bool(check(job))
