"""``tickwave dashboards build | push``: Grafana boards as code (the ``dashboards`` component).

Exit codes of ``push``: 0 done; 1 Grafana refused something (a version conflict, a bad
request); 2 configuration error; 3 authentication failed (401/403); 4 Grafana unreachable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tickwave.cli.common import console, exit_on_tickwave_error, settings_or_exit

app = typer.Typer(help="Grafana boards as code: build the files, push them to a Grafana.", no_args_is_help=True)


@app.command()
def build(
    out: Annotated[Path, typer.Option("--out", help="output directory")] = Path("grafana"),
) -> None:
    """Write the boards' JSON and the datasource, dashboard and alerting provisioning files (deterministic)."""
    settings = settings_or_exit()
    with exit_on_tickwave_error():
        from dashboards.build import build as build_all

        result = build_all(settings, out)
    for relative in result.written:
        console.print(f"wrote {result.out / relative}")
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(
        f"Grafana: copy {result.out / 'provisioning'}/* into its provisioning directory and set "
        f"{settings.dashboards.password_env} in its environment (see dashboards/README.md)"
    )
