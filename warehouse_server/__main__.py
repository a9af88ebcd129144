"""``python -m warehouse_server serve``: the embedded warehouse without the rest of the CLI."""

import sys

from warehouse_server.main import main

sys.exit(main())
