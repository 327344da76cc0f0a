"""The ``bytepiece`` command's entry point, also ``python -m bytepiece_rs`` (the command itself
is :mod:`bytepiece_rs.cli`)."""

import os


def main() -> None:
    """Runs the command in this process, which it owns: NumPy, which the command uses for
    element-wise functions only, is told not to start OpenBLAS' threads, one per core, which
    spin for about 0.08 s of CPU time after NumPy is imported, on the cores the encoding uses
    (a value the user set is kept)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from .cli import run

    run()


if __name__ == "__main__":
    main()
