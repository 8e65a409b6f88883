"""Sign-in, sign-out and failed sign-in events moved to editplatform/accounts/sign_in.py.

They depend on account rules (second factor first, per-address aggregation, the
trusted-proxy client address), which the audit layer does not know (issue 11).
"""
