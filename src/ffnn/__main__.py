"""``python -m ffnn``: the same as the ``ffnn`` command."""

import sys

from .cli import main

sys.exit(main())
