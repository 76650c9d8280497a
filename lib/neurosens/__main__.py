"""``python -m neurosens``: see :mod:`neurosens.cli.main`."""

import sys

from neurosens.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
