"""`python -m editplatform.monitoring.probe URL`: the container healthcheck.

Exit 0 when URL answers 200. Sends the Host header the web process accepts (the
first of ALLOWED_HOSTS, or --host): production refuses unknown hosts with 400. No
Django import, so a probe costs milliseconds, not an app start.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request


def probe(url: str, host: str | None, timeout: float) -> str | None:
    """None when healthy, else the reason."""
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        return f"{url}: {exc}"
    return None if status == 200 else f"{url}: HTTP {status}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect (e.g. to HTTPS) is a misconfiguration, not health."""

    def redirect_request(self, *args, **kwargs):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument(
        "--host", default=None, help="Host header (default: first of $ALLOWED_HOSTS)"
    )
    parser.add_argument("--timeout", type=float, default=4.0)
    args = parser.parse_args(argv)
    host = args.host or next(
        (h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()), None
    )
    problem = probe(args.url, host, args.timeout)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
