"""Settings for benchmarking only: artifacts stored in plaintext, no keys, no commitments.

Why: issue 17's done-when compares the job benchmark with and without envelope
encryption. ``manage.py bench_jobs --plaintext-artifacts`` starts its web server and
workers with ``DJANGO_SETTINGS_MODULE`` pointing here, so they store artifacts the way
the platform did before encryption (:func:`editplatform.jobs.artifacts.write_blob`'s
benchmark branch); reads already handle that layout (a legacy artifact has no key row).

Never part of a deployment: no environment variable turns this on, nothing in the
project's settings, compose file or Dockerfiles names this module, and it refuses to
load in production (``STYLELEDGER_ENV=production``).
"""

from editplatform.settings import *  # noqa: F403
from editplatform.settings import PRODUCTION

if PRODUCTION:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("bench_plaintext_settings is for benchmarks, never production")

BENCHMARK_PLAINTEXT_ARTIFACTS = True
