"""``python -m jobs``: the command line."""

import sys

from jobs.cli import main

sys.exit(main())
