"""Test-wide fixtures: the real embedded services, started once per run (per xdist worker) on free ports.

Fixtures live in ``tests/plugins/<area>.py``; add a module to ``pytest_plugins`` below.
"""

import os

# rich reads the width once, when the CLI's console is made: without a terminal (CI, xdist workers) it
# would be 80 columns and wrap the lines tests look for. Set before any test module imports the CLI.
os.environ["COLUMNS"] = "200"

pytest_plugins = ["tests.plugins.services", "tests.plugins.warehouse", "tests.plugins.postgres"]
