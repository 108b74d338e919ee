"""``python -m policygrid.executor serve …``."""

import sys

from .cli import main

sys.exit(main())
