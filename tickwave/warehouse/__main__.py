"""``python -m tickwave.warehouse serve|migrate|query``: the warehouse commands without the rest of the CLI.

The embedded service is launched this way (see :mod:`tickwave.services.warehouse`).
"""

from tickwave.cli.warehouse_cmd import app

app(prog_name="python -m tickwave.warehouse")
