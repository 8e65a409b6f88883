"""The action names the audit tests write: the log's own and those the apps register.

The log knows no domain words; the tests borrow real registered names from the apps
(importing them registers them, as the apps' `ready()` does).
"""

from audit.actions import AUDIT_CHECKPOINT, AUDIT_EXPORTED, AUDIT_VERIFIED  # noqa: F401
from editplatform.accounts.audit_actions import USER_LOGIN, USER_LOGIN_FAILED  # noqa: F401
from editplatform.approvals.audit_actions import JOB_APPROVED  # noqa: F401
from editplatform.jobs.audit_actions import (  # noqa: F401
    ARTIFACT_VIEWED,
    JOB_FAILED,
    JOB_QUEUED,
    JOB_STARTED,
    JOB_SUBMITTED,
    JOB_SUCCEEDED,
)
