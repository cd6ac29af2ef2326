"""``python -m oauth_core.emulator``: run the local Entra-compatible token service."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ..core.errors import OAuthCoreError
from .cli import add_arguments, run


def main(argv: Optional[List[str]] = None) -> int:
    """Parse ``argv``, run the emulator until SIGINT/SIGTERM, and return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m oauth_core.emulator",
        description="A local, Entra-compatible token service for tests and demos (loopback only).",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args, sys.stdout)
    except OAuthCoreError as exc:  # a bad option, config file or fault spec, or no cryptography
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
