"""Native output for clients that announce a protocol revision (``client_protocol_version``), as ClickHouse writes it.

A ClickHouse server given ``client_protocol_version=N`` over HTTP writes each Native block
as its TCP protocol does for revision N: from revision 1, block info (overflow flag, bucket
number) before each block; from 54337, a top-level ``DateTime('zone')`` column under its
full type name (below, and with no revision at all, as bare ``DateTime``); from 54454, a
"custom serialization" byte after each column's type. chdb writes Native for revision 0
(none of the three). clickhouse-connect announces 54405 and reads block info and zones,
clickhouse-go (inside Grafana's ClickHouse plugin) announces 54460, so the server frames
each block: it walks the block (column data is skipped by type, never decoded) and inserts
or replaces the pieces. The zone a ``DateTime`` column lost comes from the engine's own
description of the query, asked only when a block holds such a column.

A streamed result arrives one block per chunk, so once the first block shows nothing to
rewrite inside a block (no bare ``DateTime``, no per-column byte), later blocks only get
their block info. ``Variant``, ``Dynamic`` and ``JSON`` are walked through the structure their
state prefix gives (a Dynamic's types, a JSON's paths): a Dynamic as the Variant of its types
and the shared variant, a JSON as its typed paths, its dynamic paths and its shared data, in
the orders ClickHouse writes them; in the flattened serialization (what clickhouse-go inserts,
and what it asks for with ``output_format_native_use_flattened_dynamic_and_json_serialization``)
a Dynamic is a type index per row then each type's rows, a JSON its typed then all its other
paths. What it cannot walk (type names in binary, the old ``Object('json')``, an unknown
type) ends the walk of a streamed block:
below 54454 the rest of the block goes out as it is; from 54454, or in a result of several
blocks, it is refused with NOT_IMPLEMENTED rather than sent mangled. A length or discriminator
that points past the data is refused (INCORRECT_DATA, or a truncated block), never followed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import NamedTuple

from warehouse_server.protocol import INCORRECT_DATA, NOT_IMPLEMENTED, QueryError

MIN_REVISION_WITH_BLOCK_INFO = 1
MIN_REVISION_WITH_TIME_ZONE_IN_DATETIME = 54337
MIN_REVISION_WITH_CUSTOM_SERIALIZATION = 54454
# field 1 is_overflows = 0, field 2 bucket_num = -1, end of fields
BLOCK_INFO = b"\x01\x00\x02\xff\xff\xff\xff\x00"
NO_CUSTOM_SERIALIZATION = b"\x00"
MAX_BLOCK_COLUMNS = 10_000  # a client's block with more columns is refused before its types are read
MAX_TYPE_NAME_CHARS = 4096
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
    "Nothing": 1,  # a placeholder byte per row (ClickHouse's SerializationNothing)
    **{f"Interval{unit}": 8 for unit in ("Nanosecond", "Microsecond", "Millisecond", "Second", "Minute", "Hour")},
    **{f"Interval{unit}": 8 for unit in ("Day", "Week", "Month", "Quarter", "Year")},
}
_BARE_DATETIME = "DateTime"
_BARE_HEADER = b"\x08DateTime"  # the bare type as a Native block writes it (length, name)
_TYPE = re.compile(r"\s*(\w+)\s*(?:\((.*)\))?\s*$", re.DOTALL)


class _UnwalkableError(QueryError):
    """A column type whose data the walk cannot skip."""


class TruncatedBlockError(QueryError):
    """The data ends inside a block: more of it is needed."""

    def __init__(self) -> None:
        super().__init__(NOT_IMPLEMENTED, "truncated Native block")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.structures = 0  # Dynamic and JSON prefixes open around the one being read
        self.named = 0  # characters of the types named inside the data so far

    def varuint(self) -> int:
        shift = value = 0
        while True:
            if self.pos >= len(self.data):
                raise TruncatedBlockError
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def string(self) -> str:
        return self.string_of(self.varuint())

    def string_of(self, size: int) -> str:
        if self.pos + size > len(self.data):
            raise TruncatedBlockError
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
            raise TruncatedBlockError


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


# The geo types are names for what they are laid out as (ClickHouse's DataTypeCustomGeo).
_GEO_LAYOUTS = {
    "Point": "Tuple(Float64, Float64)",
    "Ring": "Array(Point)",
    "LineString": "Array(Point)",
    "MultiLineString": "Array(LineString)",
    "Polygon": "Array(Ring)",
    "MultiPolygon": "Array(Polygon)",
}


def _parse(type_name: str) -> tuple[str, list[str]]:
    if type_name in _GEO_LAYOUTS:
        return _parse(_GEO_LAYOUTS[type_name])
    match = _TYPE.match(type_name)
    if not match:
        raise QueryError(NOT_IMPLEMENTED, f"cannot reframe Native column of type {type_name}")
    return match.group(1), _split_arguments(match.group(2) or "")


def _tuple_element(argument: str) -> str:
    # Tuple(a String, `ns space` UInt8, "0" Int64): drop the element name when one is given.
    quoted = re.match(r'^(?:`(?:[^`\\]|\\.|``)*`|"(?:[^"\\]|\\.|"")*")\s+(.+)$', argument, re.DOTALL)
    if quoted:
        return quoted.group(1)
    named = re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s+(.+)$", argument, re.DOTALL)
    if named and not re.match(r"^\w+\s*\(", argument):
        return named.group(1)
    return argument


def _decimal_size(arguments: list[str]) -> int:
    precision = int(arguments[0])
    return 4 if precision <= 9 else 8 if precision <= 18 else 16 if precision <= 38 else 32


def _element_type(name: str, arguments: list[str]) -> str:
    # Array(T) holds T; Map(K, V) is Array(Tuple(K, V)); Nested(a T, b U) is Array(Tuple(a T, b U)).
    if name == "Array":
        return arguments[0]
    return f"Tuple({', '.join(arguments)})"


def _skip_column(reader: _Reader, type_name: str, rows: int) -> None:
    # ``type_name`` is a layout from _skip_prefix: a Dynamic or JSON column is already a Variant or a Tuple.
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
    elif name == "SimpleAggregateFunction":  # laid out as its value's type, the last argument
        _skip_column(reader, arguments[-1], rows)
    elif name in ("Array", "Map", "Nested"):
        offsets = [reader.uint64() for _ in range(rows)]
        inner = _element_type(name, arguments)
        _skip_column(reader, inner, offsets[-1] if offsets else 0)
    elif name == "Tuple":
        for argument in arguments:
            _skip_column(reader, _tuple_element(argument), rows)
    elif name == "LowCardinality":
        _skip_low_cardinality(reader, arguments[0], rows)
    elif name == "Variant":
        _skip_variant(reader, arguments, rows)
    elif name == _FLATTENED_LAYOUT:
        _skip_flattened(reader, arguments, rows)
    else:
        raise _UnwalkableError(
            NOT_IMPLEMENTED, f"cannot send a {type_name} column to a client with a protocol revision"
        )


def _skip_variant(reader: _Reader, variants: list[str], rows: int) -> None:
    # A discriminator per row (255: NULL), then each variant's column holding only its own rows.
    start = reader.pos
    reader.skip(rows)
    discriminators = reader.data[start : reader.pos]
    counts = [discriminators.count(index) for index in range(len(variants))]
    if sum(counts) + discriminators.count(_NULL_DISCRIMINATOR) != rows:
        raise QueryError(INCORRECT_DATA, f"a Variant discriminator past its {len(variants)} variants")
    for variant, count in zip(variants, counts, strict=True):
        if count:
            _skip_column(reader, variant, count)


def _skip_flattened(reader: _Reader, types: list[str], rows: int) -> None:
    # A type index per row, as narrow as the count of types allows (that count: NULL), then each type's rows.
    wide = len(types) > 0xFF  # UInt16 indexes: there are at most _MAX_STRUCTURE types
    start = reader.pos
    reader.skip(rows * (2 if wide else 1))
    view = memoryview(reader.data)[start : reader.pos]
    indexes = view.cast("H") if wide else view.cast("B")
    counts = Counter(indexes)
    if any(index > len(types) for index in counts):
        raise QueryError(INCORRECT_DATA, f"a Dynamic type index past its {len(types)} types")
    for index, type_name in enumerate(types):
        if counts[index]:
            _skip_column(reader, type_name, counts[index])


_NULL_DISCRIMINATOR = 255
_MAX_VARIANTS = 255  # discriminators are bytes and 255 is NULL (ClickHouse's ColumnVariant::MAX_NESTED_COLUMNS)
_BASIC_DISCRIMINATORS = 0  # Native writes a discriminator per row; the compact mode is MergeTree's
_DYNAMIC_V1, _DYNAMIC_V2 = 1, 2  # type names as text, with or without max_types first (V3 names them in binary)
_FLATTENED = 3  # output_format_native_use_flattened_dynamic_and_json_serialization, and what clickhouse-go inserts
_OBJECT_V1 = 0  # paths as text, shared data as Map(String, String)
_OBJECT_AS_STRING = 1  # output_format_native_write_json_as_string: one JSON text per row
_FLATTENED_LAYOUT = "_Flattened"  # a flattened Dynamic's layout: a type index per row, then each type's rows
_MAX_STRUCTURE = MAX_BLOCK_COLUMNS  # types of a flattened Dynamic, dynamic paths of a JSON
_SHARED_VARIANT = "SharedVariant"  # the values outside a Dynamic's types, each a String (type and value, encoded)
_SHARED_DATA = "Array(Tuple(String, String))"  # a JSON column's paths outside its dynamic paths: path, encoded value
_TYPED_PATH = re.compile(r"^(`(?:[^`\\]|\\.|``)*`|[^\s`]+)\s+(.+)$", re.DOTALL)
_MAX_NESTED_STRUCTURES = 4  # a Dynamic's types may hold a Dynamic (a JSON's Array(Dynamic)), a few levels deep
_MAX_DATA_TYPE_DEPTH = 32  # parentheses in a type named inside the data
_NOT_PARENS = re.compile(r"[^()]+")
_PAREN_STEP = {"(": 1, ")": -1}
_MAX_NAMED_CHARS = 4 << 20  # all the types named inside one walk's data: the layouts built from them stay small


def _skip_prefix(reader: _Reader, type_name: str) -> str:
    """Read the state prefixes of a ``type_name`` column; return the layout its data is walked by.

    Prefixes come before any data: LowCardinality's key version, a Variant's discriminator mode,
    a Dynamic's types and a JSON's paths, found through wrappers. A Dynamic is walked as the
    Variant of its types and the shared variant; a JSON as the Tuple of its typed paths, its
    dynamic paths (each a Dynamic) and its shared data.
    """
    name, arguments = _parse(type_name)
    if name.startswith("_"):  # a layout's own name, never a type
        raise _UnwalkableError(NOT_IMPLEMENTED, f"cannot walk a column of type {type_name[:100]}")
    if name == "LowCardinality":
        reader.uint64()
    elif name in ("Nullable", "Array"):
        return f"{name}({_skip_prefix(reader, arguments[0])})"
    elif name == "SimpleAggregateFunction":
        return _skip_prefix(reader, arguments[-1])
    elif name == "Map":
        return f"Map({_skip_prefix(reader, arguments[0])}, {_skip_prefix(reader, arguments[1])})"
    elif name == "Nested":
        return f"Array({_skip_prefix(reader, _element_type(name, arguments))})"
    elif name == "Tuple":
        return f"Tuple({', '.join(_skip_prefix(reader, _tuple_element(argument)) for argument in arguments)})"
    elif name == "Variant":
        return _skip_variant_prefix(reader, arguments)
    elif name == "Dynamic":
        return _nested_structure(reader, lambda: _skip_dynamic_prefix(reader))
    elif name == "JSON":
        return _nested_structure(reader, lambda: _skip_object_prefix(reader, arguments))
    return type_name


def _skip_variant_prefix(reader: _Reader, variants: list[str]) -> str:
    if len(variants) > _MAX_VARIANTS:
        raise QueryError(INCORRECT_DATA, f"a Variant of {len(variants)} types")
    if (mode := reader.uint64()) != _BASIC_DISCRIMINATORS:
        raise _UnwalkableError(NOT_IMPLEMENTED, f"a Variant column with discriminators in mode {mode}")
    return f"Variant({', '.join(_skip_prefix(reader, variant) for variant in variants)})"


def _skip_dynamic_prefix(reader: _Reader) -> str:
    version = reader.uint64()
    if version == _FLATTENED:
        # Every type the column holds, in the order of its indexes, then each type's prefix.
        count = reader.varuint()
        if count > _MAX_STRUCTURE:
            raise QueryError(INCORRECT_DATA, f"a Dynamic column of {count} types")
        types = [_data_type_name(reader) for _ in range(count)]
        return f"{_FLATTENED_LAYOUT}({', '.join(_skip_prefix(reader, type_name) for type_name in types)})"
    if version not in (_DYNAMIC_V1, _DYNAMIC_V2):
        raise _UnwalkableError(NOT_IMPLEMENTED, f"a Dynamic column in serialization version {version}")
    if version == _DYNAMIC_V1:
        reader.varuint()  # max_types, as the type declares it
    count = reader.varuint()
    if count >= _MAX_VARIANTS:
        raise QueryError(INCORRECT_DATA, f"a Dynamic column of {count} types")
    types = [_data_type_name(reader) for _ in range(count)]
    # The types and the shared variant, sorted by name as ClickHouse orders a Variant's types.
    variants = sorted([*types, _SHARED_VARIANT])
    if (mode := reader.uint64()) != _BASIC_DISCRIMINATORS:
        raise _UnwalkableError(NOT_IMPLEMENTED, f"a Dynamic column with discriminators in mode {mode}")
    layouts = ["String" if variant == _SHARED_VARIANT else _skip_prefix(reader, variant) for variant in variants]
    return f"Variant({', '.join(layouts)})"


def _data_type_name(reader: _Reader) -> str:
    # A type named inside the data (a Dynamic's type): as long as a block's own column types, nested
    # a bounded depth, and a type (the shared variant is the walk's own).
    size = reader.varuint()
    reader.named += size
    if size > MAX_TYPE_NAME_CHARS or reader.named > _MAX_NAMED_CHARS:
        raise QueryError(INCORRECT_DATA, f"a type name of {size} bytes in a Dynamic column, or too many")
    type_name = reader.string_of(size)
    # The deepest nesting, the parentheses' running depth walked in C: a loop over every character
    # cost a second of a core for a block of megabytes of names.
    deepest = max(accumulate(map(_PAREN_STEP.__getitem__, _NOT_PARENS.sub("", type_name)), initial=0))
    if deepest > _MAX_DATA_TYPE_DEPTH or type_name == _SHARED_VARIANT:
        raise QueryError(INCORRECT_DATA, f"a Dynamic column holding {type_name[:100]}")
    return type_name


def _nested_structure(reader: _Reader, read: Callable[[], str]) -> str:
    # Dynamic and JSON prefixes name types that may hold more of them: bounded before recursion is.
    if reader.structures >= _MAX_NESTED_STRUCTURES:
        raise QueryError(INCORRECT_DATA, f"Dynamic or JSON columns nested more than {_MAX_NESTED_STRUCTURES} deep")
    reader.structures += 1
    try:
        return read()
    finally:
        reader.structures -= 1


def _skip_object_prefix(reader: _Reader, arguments: list[str]) -> str:
    version = reader.uint64()
    if version == _OBJECT_AS_STRING:
        return "String"
    if version not in (_OBJECT_V1, _FLATTENED):
        raise _UnwalkableError(NOT_IMPLEMENTED, f"a JSON column in serialization version {version}")
    if version == _OBJECT_V1:
        reader.varuint()  # max_dynamic_paths
    count = reader.varuint()
    if count > _MAX_STRUCTURE:
        raise QueryError(INCORRECT_DATA, f"a JSON column of {count} dynamic paths")
    for _ in range(count):
        reader.string()  # the path: its data comes in this order
    typed = sorted(_typed_paths(arguments))
    layouts = [_skip_prefix(reader, type_name) for _, type_name in typed]
    layouts += [_nested_structure(reader, lambda: _skip_dynamic_prefix(reader)) for _ in range(count)]
    if version == _OBJECT_V1:  # flattened, every path is a dynamic one: no shared data
        layouts.append(_SHARED_DATA)
    return f"Tuple({', '.join(layouts)})"


def _typed_paths(arguments: list[str]) -> list[tuple[bytes, str]]:
    # JSON(max_dynamic_paths=N, a.b UInt32, `c d` String, SKIP x, SKIP REGEXP 'y'): the typed paths, unquoted.
    paths = []
    for argument in arguments:
        if re.match(r"^\w+\s*=", argument) or re.match(r"^SKIP\s", argument):
            continue
        match = _TYPED_PATH.match(argument)
        if not match:
            raise _UnwalkableError(NOT_IMPLEMENTED, f"a JSON path hint {argument[:100]}")
        path = match.group(1)
        if path.startswith("`"):
            path = re.sub(r"\\(.)|``", lambda m: m.group(1) or "`", path[1:-1])
        paths.append((path.encode(), match.group(2)))
    return paths


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


def native_string(text: str | bytes) -> bytes:
    """Return ``text`` as Native writes a string: its length (a varint), then its UTF-8 bytes."""
    encoded = text.encode() if isinstance(text, str) else text
    return varuint(len(encoded)) + encoded


class NativeFramer:
    """Frames revision-0 Native output for one result, block by block, for ``client_revision``.

    ``true_types`` answers the full type of each top-level column (or None when the engine
    cannot say); it is called at most once, and only when a block holds a bare ``DateTime``
    column that the revision expects with its zone. A streamed result cannot ask while its
    stream is open: it checks :meth:`wants_types` on its first block and hands the answer
    over with :meth:`use_types`.
    """

    def __init__(self, client_revision: int, true_types: Callable[[], Sequence[str] | None]) -> None:
        """Frame for ``client_revision``, asking ``true_types`` for zones when one is needed."""
        self.client_revision = client_revision
        self._true_types = true_types
        self._types: Sequence[str] | None = None
        self._asked = False
        self._only_block_info: bool | None = None  # known after the first block with columns

    def _full_type(self, index: int) -> str | None:
        if not self._asked:
            self._asked = True
            self._types = self._true_types()
        if self._types is None or index >= len(self._types):
            return None
        full = self._types[index]
        return full if full.startswith(_BARE_DATETIME + "(") else None

    def use_types(self, types: Sequence[str] | None) -> None:
        """Take the result's full column types (from the engine's description) instead of asking for them."""
        self._types, self._asked = types, True

    def wants_types(self, block: bytes) -> bool:
        """Whether framing ``block`` (one block) would ask for the column types: a zone is due and not yet known."""
        if self.client_revision < MIN_REVISION_WITH_TIME_ZONE_IN_DATETIME or self._asked or _BARE_HEADER not in block:
            return False
        reader = _Reader(block)
        columns, rows = reader.varuint(), reader.varuint()
        for _ in range(columns):
            reader.string()
            type_name = reader.string()
            if type_name == _BARE_DATETIME:
                return True
            if rows:
                try:
                    _skip_column(reader, _skip_prefix(reader, type_name), rows)
                except _UnwalkableError:
                    return False  # the walk stops here anyway: no zone past it is restored
        return False

    def frame(self, data: bytes, *, one_block: bool = False) -> bytes:
        """Return ``data`` (whole blocks) as a server writes it for the client's revision.

        Args:
            data: revision-0 Native blocks, as the engine wrote them.
            one_block: ``data`` is exactly one block (a streamed chunk): the walk may stop early.

        Raises:
            QueryError: NOT_IMPLEMENTED for a column type it cannot walk where it must, or a truncated block.
        """
        if self.client_revision < MIN_REVISION_WITH_BLOCK_INFO or not data:
            return data
        flags = self.client_revision >= MIN_REVISION_WITH_CUSTOM_SERIALIZATION
        zones = self.client_revision >= MIN_REVISION_WITH_TIME_ZONE_IN_DATETIME
        if one_block and self._only_block_info is None and not flags and (not zones or _BARE_HEADER not in data):
            # Nothing inside the block can need rewriting: no bare DateTime type is written in it.
            self._only_block_info = True
        if one_block and self._only_block_info:
            return BLOCK_INFO + data
        reader = _Reader(data)
        out = bytearray()
        while reader.pos < len(data):
            out += BLOCK_INFO
            start = reader.pos
            columns, rows = reader.varuint(), reader.varuint()
            out += data[start : reader.pos]
            rewrites = False
            for index in range(columns):
                start = reader.pos
                reader.string()
                type_start = reader.pos
                type_name = reader.string()
                full = self._full_type(index) if zones and type_name == _BARE_DATETIME else None
                rewrites = rewrites or full is not None
                out += data[start:type_start] + native_string(full) if full else data[start : reader.pos]
                if flags:
                    out += NO_CUSTOM_SERIALIZATION
                start = reader.pos
                if rows:
                    try:
                        _skip_column(reader, _skip_prefix(reader, type_name), rows)
                    except _UnwalkableError:
                        if flags or not one_block:
                            raise
                        # The rest of this block's columns go out as they are (no zones restored past here).
                        return bytes(out + data[start:])
                out += data[start : reader.pos]
            if columns and self._only_block_info is None:
                self._only_block_info = not flags and not rewrites
        return bytes(out)


def reframe_native(data: bytes, client_revision: int) -> bytes:
    """Return revision-0 Native ``data`` as a server writes it for ``client_revision`` (zones not restored).

    Raises:
        QueryError: NOT_IMPLEMENTED for a column type it cannot walk, or a truncated block.
    """
    return NativeFramer(client_revision, lambda: None).frame(data)


class Unframed(NamedTuple):
    """A client's block read by :func:`unframe_block`."""

    end: int  # where it ends in the data read
    block: bytes  # as revision-0 Native
    rows: int
    columns: list[tuple[str, str]]  # name and type of each column


def empty_block(columns: Sequence[tuple[str, str]]) -> bytes:
    """Return a revision-0 Native block of no rows with ``columns`` (name, type): a result's or an insert's header."""
    out = bytearray(varuint(len(columns)) + varuint(0))
    for name, type_name in columns:
        out += native_string(name) + native_string(type_name)
    return bytes(out)


def varuint(value: int) -> bytes:
    """Return ``value`` as an unsigned LEB128 varint."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def block_rows(data: bytes, client_revision: int) -> int:
    """Return the row count of the block ``data`` starts with, as a client of ``client_revision`` reads it.

    Only the block's head is read: what a result's later blocks need, whose columns the first one named.
    """
    reader = _Reader(data)
    _skip_block_info(reader, client_revision)
    reader.varuint()  # columns
    return reader.varuint()


def _skip_block_info(reader: _Reader, client_revision: int) -> None:
    if client_revision >= MIN_REVISION_WITH_BLOCK_INFO:
        while (field_number := reader.varuint()) != 0:
            if field_number not in (1, 2):
                raise QueryError(NOT_IMPLEMENTED, f"unknown block info field {field_number}")
            reader.skip(1 if field_number == 1 else 4)  # is_overflows (UInt8), bucket_num (Int32)


def unframe_block(data: bytes, client_revision: int) -> Unframed:
    """Read the first block of ``data`` as a client of ``client_revision`` frames it (the inverse of framing).

    Returns the block's end in ``data``, the block as revision-0 Native (what the engine reads:
    no block info, no per-column serialization byte) and its row count. Column data is walked
    by type, never decoded.

    Raises:
        TruncatedBlockError: ``data`` ends inside the block.
        QueryError: NOT_IMPLEMENTED for a block the engine cannot take as it is (a custom
            serialization, a type the walk cannot skip), or one past the size bounds.
    """
    reader = _Reader(data)
    _skip_block_info(reader, client_revision)
    start = reader.pos
    columns, rows = reader.varuint(), reader.varuint()
    if columns > MAX_BLOCK_COLUMNS:
        raise QueryError(NOT_IMPLEMENTED, f"a block of {columns} columns (at most {MAX_BLOCK_COLUMNS})")
    out = bytearray(data[start : reader.pos])
    names: list[tuple[str, str]] = []
    for _ in range(columns):
        start = reader.pos
        name = reader.string()
        type_name = reader.string()
        names.append((name, type_name))
        if len(type_name) > MAX_TYPE_NAME_CHARS:
            raise QueryError(NOT_IMPLEMENTED, f"a column type of {len(type_name)} characters")
        out += data[start : reader.pos]
        if client_revision >= MIN_REVISION_WITH_CUSTOM_SERIALIZATION:
            reader.skip(1)
            if data[reader.pos - 1] != 0:
                raise QueryError(NOT_IMPLEMENTED, "a column with a custom (sparse) serialization")
        start = reader.pos
        if rows:
            _skip_column(reader, _skip_prefix(reader, type_name), rows)
        out += data[start : reader.pos]
    return Unframed(reader.pos, bytes(out), rows, names)
