"""The model registry: bundles registered with a model card, activated by two people."""
