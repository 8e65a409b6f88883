"""Compliance pages about jobs, built on the audit log: a job's timeline and artifacts."""
