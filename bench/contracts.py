"""Contract codec speed: msgspec (what Tickwave uses) vs the alternatives a user would pick.

Encodes and decodes (with validation) the same 200k ticks with:
- msgspec structs (tickwave.contracts),
- pydantic v2 models with the same constraints,
- dataclasses + json (no validation at all: the floor of what "no library" costs).

Run: .venv/bin/python bench/contracts.py
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from typing import Annotated

import msgspec
import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.console import Console
from rich.table import Table

from app.demo import demo_ticks
from bench.summary import record
from tickwave.contracts import Tick, decode, encode

N = 200_000


class PydanticTick(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    type: str = "tick.v1"
    symbol: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._#\-]+$")]
    time_ms: Annotated[int, Field(ge=0)]
    seq: Annotated[int, Field(ge=0)]
    bid: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    ask: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    last: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    volume: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    flags: int = 0
    source: str = ""

    @model_validator(mode="after")
    def _ask_not_below_bid(self) -> PydanticTick:
        if self.ask < self.bid:
            raise ValueError("ask below bid")
        return self


@dataclass(frozen=True)
class PlainTick:
    symbol: str
    time_ms: int
    seq: int
    bid: float
    ask: float
    last: float = 0.0
    volume: float = 0.0
    flags: int = 0
    source: str = ""


def timed(label: str, function, items) -> tuple[str, float]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for item in items:
        function(item)
    return label, (time.perf_counter() - started) / len(items) * 1e6


def main() -> None:
    ticks = demo_ticks(N, now_ms=1_700_000_000_000)
    wires = [encode(tick) for tick in ticks]
    pydantic_ticks = [PydanticTick.model_validate_json(wire) for wire in wires[:1000]] * (N // 1000)
    plain_ticks = [PlainTick(**{k: v for k, v in msgspec.structs.asdict(t).items()}) for t in ticks[:1000]] * (
        N // 1000
    )
    rows = [
        ("msgspec (tickwave)", timed("", encode, ticks)[1], timed("", lambda w: decode(w, Tick), wires)[1], "yes"),
        (
            f"pydantic {pydantic.VERSION}",
            timed("", PydanticTick.model_dump_json, pydantic_ticks)[1],
            timed("", PydanticTick.model_validate_json, wires)[1],
            "yes",
        ),
        (
            "dataclass + json",
            timed("", lambda t: json.dumps(asdict(t)).encode(), plain_ticks)[1],
            timed("", lambda w: PlainTick(**{k: v for k, v in json.loads(w).items() if k != "type"}), wires)[1],
            "no",
        ),
    ]
    table = Table(title=f"tick codec, {N:,} ticks, {platform.python_version()} on {platform.machine()}")
    for column in ("codec", "encode us/tick", "decode us/tick", "validates"):
        table.add_column(column)
    for name, enc, dec, validates in rows:
        table.add_row(name, f"{enc:.2f}", f"{dec:.2f}", validates)
    Console().print(table)
    (_, enc, dec, _), (pydantic_name, p_enc, p_dec, _) = rows[0], rows[1]
    record("tick decode + validate, msgspec", dec, "us/tick", baseline=f"{pydantic_name}: {p_dec:.2f} us/tick")
    record("tick encode, msgspec", enc, "us/tick", baseline=f"{pydantic_name}: {p_enc:.2f} us/tick")


if __name__ == "__main__":
    main()
