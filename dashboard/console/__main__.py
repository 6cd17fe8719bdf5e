"""`python -m dashboard.console`: the command-line client (client.py)."""

import sys

from .client import main

sys.exit(main())
