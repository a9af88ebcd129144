"""Native output for clients that announce a protocol revision (``client_protocol_version``), as ClickHouse writes it.

A ClickHouse server given ``client_protocol_version=N`` over HTTP writes each Native block
as its TCP protocol does for revision N: block info (overflow flag, bucket number) before
the block, and, from revision 54454, a "custom serialization" byte after each column's
type. chdb writes Native for revision 0 (neither). clickhouse-go, the client inside
Grafana's ClickHouse plugin, always sends its revision and decodes accordingly, so the
server reframes: it walks the blocks (column data is skipped by type, never decoded) and
inserts the two pieces. Types it cannot walk (Dynamic, Variant, JSON, Object, Nothing)
are refused with NOT_IMPLEMENTED rather than sent mangled.
"""

from __future__ import annotations

import re

from warehouse_server.protocol import NOT_IMPLEMENTED, QueryError

MIN_REVISION_WITH_BLOCK_INFO = 1
MIN_REVISION_WITH_CUSTOM_SERIALIZATION = 54454
# field 1 is_overflows = 0, field 2 bucket_num = -1, end of fields
BLOCK_INFO = b"\x01\x00\x02\xff\xff\xff\xff\x00"
NO_CUSTOM_SERIALIZATION = b"\x00"
_FIXED_SIZES = {
    "UInt8": 1,
    "Int8": 1,
    "Bool": 1,
    "Enum8": 1,
    "UInt16": 2,
    "Int16": 2,
    "Date": 2,
    "Enum16": 2,
    "UInt32": 4,
    "Int32": 4,
    "Float32": 4,
    "DateTime": 4,
    "Date32": 4,
    "IPv4": 4,
    "Decimal32": 4,
    "UInt64": 8,
    "Int64": 8,
    "Float64": 8,
    "DateTime64": 8,
    "Decimal64": 8,
    "Time": 4,
    "Time64": 8,
    "UInt128": 16,
    "Int128": 16,
    "UUID": 16,
    "IPv6": 16,
    "Decimal128": 16,
    "BFloat16": 2,
    "UInt256": 32,
    "Int256": 32,
    "Decimal256": 32,
}
_TYPE = re.compile(r"\s*(\w+)\s*(?:\((.*)\))?\s*$", re.DOTALL)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varuint(self) -> int:
        shift = value = 0
        while True:
            if self.pos >= len(self.data):
                raise QueryError(NOT_IMPLEMENTED, "truncated Native block")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def string(self) -> str:
        size = self.varuint()
        text = self.data[self.pos : self.pos + size].decode("utf-8", errors="replace")
        self.skip(size)
        return text

    def uint64(self) -> int:
        value = int.from_bytes(self.data[self.pos : self.pos + 8], "little")
        self.skip(8)
        return value

    def skip(self, size: int) -> None:
        self.pos += size
        if self.pos > len(self.data):
            raise QueryError(NOT_IMPLEMENTED, "truncated Native block")


def _split_arguments(text: str) -> list[str]:
    # Top-level commas only: nested parentheses and quoted literals (Enum names, zones) stay whole.
    parts, depth, current, quote = [], 0, [], ""
    for char in text:
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
            continue
        if char in "'`\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def _parse(type_name: str) -> tuple[str, list[str]]:
    match = _TYPE.match(type_name)
    if not match:
        raise QueryError(NOT_IMPLEMENTED, f"cannot reframe Native column of type {type_name}")
    return match.group(1), _split_arguments(match.group(2) or "")


def _tuple_element(argument: str) -> str:
    # Tuple(a String, b UInt8): drop the element name when one is given.
    named = re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s+(.+)$", argument, re.DOTALL)
    if named and not re.match(r"^\w+\s*\(", argument):
        return named.group(1)
    return argument


def _decimal_size(arguments: list[str]) -> int:
    precision = int(arguments[0])
    return 4 if precision <= 9 else 8 if precision <= 18 else 16 if precision <= 38 else 32


def _skip_column(reader: _Reader, type_name: str, rows: int) -> None:
    name, arguments = _parse(type_name)
    if name in _FIXED_SIZES:
        reader.skip(_FIXED_SIZES[name] * rows)
    elif name == "Decimal":
        reader.skip(_decimal_size(arguments) * rows)
    elif name == "String":
        for _ in range(rows):
            reader.skip(reader.varuint())
    elif name == "FixedString":
        reader.skip(int(arguments[0]) * rows)
    elif name == "Nullable":
        reader.skip(rows)
        _skip_column(reader, arguments[0], rows)
    elif name in ("Array", "Map"):
        offsets = [reader.uint64() for _ in range(rows)]
        inner = arguments[0] if name == "Array" else f"Tuple({arguments[0]}, {arguments[1]})"
        _skip_column(reader, inner, offsets[-1] if offsets else 0)
    elif name == "Tuple":
        for argument in arguments:
            _skip_column(reader, _tuple_element(argument), rows)
    elif name == "LowCardinality":
        _skip_low_cardinality(reader, arguments[0], rows)
    else:
        raise QueryError(NOT_IMPLEMENTED, f"cannot send a {type_name} column to a client with a protocol revision")


def _skip_prefix(reader: _Reader, type_name: str) -> None:
    # State prefixes come before any data: LowCardinality's key version, found through wrappers.
    name, arguments = _parse(type_name)
    if name == "LowCardinality":
        reader.uint64()
    elif name in ("Nullable", "Array"):
        _skip_prefix(reader, arguments[0])
    elif name == "Map":
        _skip_prefix(reader, arguments[0])
        _skip_prefix(reader, arguments[1])
    elif name == "Tuple":
        for argument in arguments:
            _skip_prefix(reader, _tuple_element(argument))


def _skip_low_cardinality(reader: _Reader, inner: str, rows: int) -> None:
    if rows == 0:
        return
    flags = reader.uint64()
    index_size = 1 << (flags & 0xFF)
    if flags & (1 << 9):  # has additional keys: the dictionary follows
        keys = reader.uint64()
        inner_name, inner_arguments = _parse(inner)
        dictionary_type = inner_arguments[0] if inner_name == "Nullable" else inner
        _skip_column(reader, dictionary_type, keys)
    indexes = reader.uint64()
    reader.skip(indexes * index_size)


def reframe_native(data: bytes, client_revision: int) -> bytes:
    """Return revision-0 Native ``data`` as a server writes it for ``client_revision``.

    Raises:
        QueryError: NOT_IMPLEMENTED for a column type it cannot walk, or a truncated block.
    """
    if client_revision < MIN_REVISION_WITH_BLOCK_INFO:
        return data
    flags = client_revision >= MIN_REVISION_WITH_CUSTOM_SERIALIZATION
    reader = _Reader(data)
    out = bytearray()
    while reader.pos < len(data):
        out += BLOCK_INFO
        start = reader.pos
        columns, rows = reader.varuint(), reader.varuint()
        out += data[start : reader.pos]
        for _ in range(columns):
            start = reader.pos
            reader.string()
            type_name = reader.string()
            out += data[start : reader.pos]
            if flags:
                out += NO_CUSTOM_SERIALIZATION
            start = reader.pos
            if rows:
                _skip_prefix(reader, type_name)
                _skip_column(reader, type_name, rows)
            out += data[start : reader.pos]
    return bytes(out)
