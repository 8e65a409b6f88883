"""Operating a deployment: Prometheus metrics and the one-shot `deploy_init` command.

A pages-layer app: it reads jobs and the audit log, nothing below imports it.
"""
