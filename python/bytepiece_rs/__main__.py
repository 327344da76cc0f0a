"""``python -m bytepiece_rs``: the ``bytepiece`` command (see :mod:`bytepiece_rs.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
