"""``python -m probsched``: the ``probsched`` command."""

import sys

from .driver.cli import main

sys.exit(main())
