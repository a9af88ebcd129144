"""``python -m tickwave.cli``: the same command line as the ``tickwave`` script."""

from tickwave.cli import main

main()
