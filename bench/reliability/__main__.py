"""``python -m bench.reliability``: see :mod:`bench.reliability`."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
