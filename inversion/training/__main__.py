import sys

from inversion.training.cli import main

sys.exit(main())
