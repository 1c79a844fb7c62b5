"""``python -m passkcore.cli``: the ``passk`` command."""

import sys

from passkcore.cli import main

sys.exit(main())
