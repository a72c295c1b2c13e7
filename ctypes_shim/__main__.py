"""`python -m ctypes_shim` and the `ctypes-shim` script.

`run` is dispatched here, before argparse and the rest of the CLI are imported: it starts
every process of a deployment that uses it, so its start-up cost is kept to _run's own.
"""

import sys


def main() -> int:
    """Run the command line in sys.argv; return the exit code."""
    if sys.argv[1:2] == ["run"]:
        from ._run import main as run  # noqa: PLC0415

        return run(sys.argv[2:])
    from ._cli import main as cli  # noqa: PLC0415

    return cli()


if __name__ == "__main__":
    sys.exit(main())  # pragma: no branch
