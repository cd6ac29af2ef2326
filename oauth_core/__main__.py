"""``python -m oauth_core`` runs the ``oauth-core`` command line."""

import sys

from .cli import main

sys.exit(main())
