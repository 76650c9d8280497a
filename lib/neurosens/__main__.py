"""``python -m neurosens``: see :mod:`neurosens.cli`."""

import sys

from neurosens.cli import main

if __name__ == "__main__":
    sys.exit(main())
