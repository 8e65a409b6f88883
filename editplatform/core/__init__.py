"""Platform plumbing: health and readiness, request ids, the run orchestrator."""
