"""Platform plumbing: health and readiness, request ids, the one domain error (and its
API and portal rendering), the run orchestrator."""
