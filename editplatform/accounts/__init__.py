"""Accounts and roles: who may do what (Django groups)."""
