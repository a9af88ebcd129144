"""Hypothesis strategies for every bus message, derived from the structs' own type info.

Deriving them from ``msgspec.inspect`` keeps the tests honest when a contract gains a
field: the new field is generated automatically, with its declared constraints.
"""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

from tickwave.contracts import Message

_INT64 = 2**63 - 1


def _float(info: mi.FloatType) -> st.SearchStrategy[float]:
    low = info.ge if info.ge is not None else info.gt
    high = info.le if info.le is not None else info.lt
    return st.floats(
        min_value=low,
        max_value=high,
        exclude_min=info.gt is not None,
        exclude_max=info.lt is not None,
        allow_nan=False,
        allow_infinity=False,
    )


def strategy_for(info: mi.Type) -> st.SearchStrategy[Any]:
    """Return a strategy producing values valid for a msgspec type."""
    match info:
        case mi.StrType(pattern=str() as pattern):
            return st.from_regex(pattern, fullmatch=True).filter(
                lambda text: (info.min_length or 0) <= len(text) <= (info.max_length or 10**9)
            )
        case mi.StrType():
            return st.text(max_size=40)
        case mi.IntType():
            low = info.ge if info.ge is not None else -_INT64
            return st.integers(min_value=low, max_value=_INT64)
        case mi.FloatType():
            return _float(info)
        case mi.DecimalType():
            return st.decimals(allow_nan=False, allow_infinity=False)
        case mi.BoolType():
            return st.booleans()
        case mi.NoneType():
            return st.none()
        case mi.LiteralType():
            return st.sampled_from(info.values)
        case mi.UnionType():
            return st.one_of([strategy_for(member) for member in info.types])
        case mi.DictType():
            return st.dictionaries(strategy_for(info.key_type), strategy_for(info.value_type), max_size=5)
        case mi.VarTupleType():
            return st.lists(strategy_for(info.item_type), max_size=4).map(tuple)
    raise TypeError(f"no strategy for {info!r}")


def message_strategy(kind: type[Message]) -> st.SearchStrategy[Message]:
    """Return a strategy of valid instances of ``kind`` (invalid combinations are dropped)."""
    info = mi.type_info(kind)
    assert isinstance(info, mi.StructType)
    fields = {field.name: strategy_for(field.type) for field in info.fields}

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        values = {name: draw(strategy) for name, strategy in fields.items()}
        try:
            return kind(**values)
        except (ValueError, TypeError, msgspec.ValidationError):
            from hypothesis import assume

            assume(False)
            raise  # unreachable: assume(False) aborts the example

    return build()
