"""``python -m flowsentinel.cli``: the same as the ``flowsentinel`` command."""

import sys

from . import main

sys.exit(main())
