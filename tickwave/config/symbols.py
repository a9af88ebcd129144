"""The symbol registry section: how each tradable symbol is quoted."""

from __future__ import annotations

import re

from pydantic import Field, model_validator

from tickwave.config.base import Section

SYMBOL_NAME = re.compile(r"^[A-Za-z0-9._#\-]{1,32}$")  # as tickwave.contracts.Symbol


class SymbolSpec(Section):
    """One tradable symbol: how its prices are quoted."""

    digits: int = Field(ge=0, le=10, description="decimal places of a quote (EURUSD 5, USDJPY 3)")
    tick_size: float = Field(gt=0, description="smallest price step (EURUSD 0.00001)")
    # Instrument facts (tickwave.instruments): left out, they come from known symbols or the name.
    contract_size: float | None = Field(default=None, gt=0, description="units per lot (FX 100000, XAUUSD 100)")
    base: str | None = Field(default=None, description="base currency or asset (EURJPY: EUR)")
    quote: str | None = Field(default=None, description="currency prices and P&L are in (EURJPY: JPY)")
    margin_currency: str | None = Field(default=None, description="currency of the margin (default: base)")
    pip_size: float | None = Field(default=None, gt=0, description="one pip in price units (EURUSD 0.0001)")
    volume_min: float | None = Field(default=None, gt=0, description="smallest order (lots)")
    volume_step: float | None = Field(default=None, gt=0, description="order sizes are multiples of this (lots)")
    volume_max: float | None = Field(default=None, gt=0, description="largest order (lots)")
    # Plausibility bounds of a tick (tickwave.instruments.Instrument.bounds): left out, they come
    # from the grid (a price or volume is a whole number of steps, at most 2^53 of them).
    price_min: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="lowest plausible bid, ask or last (default: tick_size)"
    )
    price_max: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="highest plausible bid, ask or last (default: tick_size x 2^53)",
    )
    tick_volume_max: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="largest plausible volume of one tick (default: volume_step x 2^53)",
    )

    @model_validator(mode="after")
    def _tick_size_fits_digits(self) -> SymbolSpec:
        # A tick size finer than the quoted digits could never be observed in a quote.
        if self.tick_size < 10.0**-self.digits * (1 - 1e-9):
            raise ValueError(f"tick_size {self.tick_size} is finer than {self.digits} digits allow")
        if self.price_min is not None and self.price_max is not None and self.price_min >= self.price_max:
            raise ValueError(f"price_min {self.price_min} must be below price_max {self.price_max}")
        return self


def default_symbols() -> dict[str, SymbolSpec]:
    """Return the built-in symbol registry: FX majors and crosses, gold, silver and an index CFD."""
    fx5, fx3 = SymbolSpec(digits=5, tick_size=0.00001), SymbolSpec(digits=3, tick_size=0.001)
    return {
        "EURUSD": fx5,
        "GBPUSD": fx5,
        "USDCHF": fx5,
        "AUDUSD": fx5,
        "NZDUSD": fx5,
        "USDCAD": fx5,
        "EURGBP": fx5,
        "EURCHF": fx5,
        "USDJPY": fx3,
        "EURJPY": fx3,
        "GBPJPY": fx3,
        "AUDJPY": fx3,
        "XAUUSD": SymbolSpec(digits=2, tick_size=0.01),
        "XAGUSD": SymbolSpec(digits=3, tick_size=0.001),
        "US500": SymbolSpec(digits=1, tick_size=0.1),
    }
