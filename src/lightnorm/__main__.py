"""``python -m lightnorm``: the same as the ``lightnorm`` command."""

import sys

from lightnorm.cli.core import main

sys.exit(main())
