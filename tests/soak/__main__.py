"""`python -m tests.soak`: see tests/soak/harness.py and docs/reliability.md."""

import sys

from tests.soak.harness import main

sys.exit(main())
