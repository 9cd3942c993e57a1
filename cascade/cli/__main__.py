"""``python -m cascade.cli``: the same as the ``cascade`` console script."""

import sys

from .main import main

sys.exit(main())
