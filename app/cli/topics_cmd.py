"""``tickwave topics create | list | acls | tail``: the topic registry on any Kafka, and what a topic holds."""

from __future__ import annotations

from typing import Annotated

import msgspec
import typer
from rich.table import Table

from adapters.acls import apply_acls, grants, tail_group
from adapters.bus import default_principal, make_admin, resolve_admin, resolve_bootstrap
from adapters.retention import topic_retention
from adapters.topics import Record, create_topics, last_records
from app.cli.common import console, exit_on_tickwave_error, settings_or_exit
from tickwave.contracts import decode_any
from tickwave.errors import ContractError
from tickwave.topics import READER, topic_specs

app = typer.Typer(help="Create and list Tickwave's Kafka topics and their ACLs.", no_args_is_help=True)


@app.command("create")
def create() -> None:
    """Create every registered topic that does not exist yet (never relies on auto-creation); set retention."""
    settings = settings_or_exit()
    with exit_on_tickwave_error():
        admin = make_admin(resolve_admin(settings))
        created = create_topics(admin, settings)
    console.print(f"created: {', '.join(created)}" if created else "all topics already exist")


@app.command("list")
def list_topics() -> None:
    """List the registered topics and whether each exists on the cluster."""
    settings = settings_or_exit()
    with exit_on_tickwave_error():
        existing = make_admin(resolve_admin(settings)).list_topics(timeout=10).topics
        retention = {rule.topic: rule for rule in topic_retention(settings.retention)}
    table = Table("topic", "partitions", "kept", "size per partition", "key", "value", "exists")
    for spec in topic_specs(settings):
        rule = retention[spec.base_name]
        name = spec.name(settings.kafka.topic_prefix)
        found = existing.get(name)
        table.add_row(
            name,
            str(spec.partitions),
            rule.time_text,
            rule.size_text,
            spec.key,
            spec.value,
            f"yes ({len(found.partitions)} partitions)" if found else "[red]no[/]",
        )
    console.print(table)


@app.command("acls")
def acls(
    is_applied: Annotated[bool, typer.Option("--apply", help="create them on the cluster (needs ALTER on it)")] = False,
) -> None:
    """Print the ACLs the topic registry grants each principal; with --apply, create them."""
    settings = settings_or_exit()
    table = Table("principal", "operation", "resource", "name", "pattern")
    for grant in grants(settings):
        table.add_row(
            f"User:{grant.principal}",
            grant.operation,
            grant.resource,
            grant.name,
            "prefixed" if grant.is_prefix else "literal",
        )
    console.print(table)
    if is_applied:
        with exit_on_tickwave_error():
            count = apply_acls(make_admin(resolve_admin(settings)), settings)
        console.print(f"applied {count} ACLs")


@app.command("tail")
def tail(
    topic: Annotated[str, typer.Argument(help="a registered topic's name (the prefix is added), e.g. ticks, signals")],
    count: Annotated[int, typer.Option("-n", "--count", min=1, help="messages per partition, the newest")] = 5,
) -> None:
    """Print a topic's newest messages as JSON lines, decoded by their contract (kcat -C -o -N -e).

    Reads as this process's principal with its security settings, joins no consumer group and
    commits nothing; a message that is not a contract is printed as its raw text.
    """
    settings = default_principal(settings_or_exit(), READER)
    name = f"{settings.kafka.topic_prefix}{topic}"
    with exit_on_tickwave_error():
        records = last_records(resolve_bootstrap(settings), name, count, tail_group(settings))
    for record in records:
        typer.echo(_record_line(record))  # one JSON document a line, for jq


def _record_line(record: Record) -> str:
    value: object = None
    if record.value is not None:
        try:
            value = msgspec.to_builtins(decode_any(record.value))
        except ContractError:
            value = record.value.decode(errors="replace")
    key = None if record.key is None else record.key.decode(errors="replace")
    line = {
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "key": key,
        "value": value,
    }
    return msgspec.json.encode(line).decode()
