"""``python -m bytepiece_rs``: the ``bytepiece`` command (see :mod:`bytepiece_rs.cli`)."""

from .cli import run

if __name__ == "__main__":
    run()
