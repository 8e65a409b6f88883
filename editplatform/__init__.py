"""StyleLedger's Django project (the design card's `platform/`).

Named `editplatform` because a package called `platform` would shadow Python's
standard-library module of that name (and `import uuid` breaks).
"""

from editplatform.celery import app as celery_app

__all__ = ("celery_app",)
