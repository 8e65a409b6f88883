"""The tamper-evident audit log: an append-only RFC 9162 Merkle log with signed checkpoints.

Other apps write to it with `audit.log.append_event(...)` inside their own transaction.
"""
