"""``python -m lightnorm``: the same as the ``lightnorm`` command."""

import sys

from .cli import main

sys.exit(main())
