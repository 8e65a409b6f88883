"""Telling people what happened to their jobs: in-app notifications and email."""
