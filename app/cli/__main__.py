"""``python -m app.cli``: the same command line as the ``tickwave`` script."""

from app.cli import main

main()
