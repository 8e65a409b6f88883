"""Retention and erasure: policies that shred due artifacts, legal holds, erasure requests.

Built on crypto-shredding (:mod:`editplatform.jobs.shredding`): destroying an artifact's
data key destroys its bytes while jobs and the audit log keep their records and proofs.
"""
