"""Helpers shared by the benchmark management commands (``bench_jobs``, ``bench_submit``)."""
