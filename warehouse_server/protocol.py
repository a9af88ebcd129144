"""What the ClickHouse HTTP interface promises its clients, as data and pure functions.

Error codes, the ``Code: N. DB::Exception: ...`` text, the HTTP status of each code
(from ClickHouse's ``exceptionCodeToHTTPStatus``), content types per format, the
``X-ClickHouse-Summary`` header, and the request parameters that are not settings.
Everything here is free of I/O so the server modules and the unit tests share it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from tickwave.errors import TickwaveError

ENGINE_VERSION_FALLBACK = "26.9"
SERVER_DISPLAY_NAME = "tickwave-warehouse"

# ClickHouse error codes the server raises itself (names and numbers as in ErrorCodes.cpp).
BAD_ARGUMENTS = 36
CHECKSUM_DOESNT_MATCH = 40
NOT_IMPLEMENTED = 48
SYNTAX_ERROR = 62
UNKNOWN_FORMAT = 73
UNKNOWN_COMPRESSION_METHOD = 89
UNKNOWN_PACKET_FROM_CLIENT = 101
UNEXPECTED_PACKET_FROM_CLIENT = 102
UNKNOWN_SETTING = 115
INCORRECT_DATA = 117
READONLY = 164
TOO_MANY_SIMULTANEOUS_QUERIES = 202
NETWORK_ERROR = 210
QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING = 216
QUERY_IS_TOO_LARGE = 229
NOT_ENOUGH_SPACE = 243
TOO_LARGE_SIZE_COMPRESSED = 246
CANNOT_DECOMPRESS = 271
SESSION_NOT_FOUND = 372
SESSION_IS_LOCKED = 373
INVALID_SESSION_TIMEOUT = 374
HTTP_LENGTH_REQUIRED = 381
DATABASE_ACCESS_DENIED = 291
TOO_MANY_ROWS_OR_BYTES = 396
ACCESS_DENIED = 497
AUTHENTICATION_FAILED = 516
UNKNOWN_EXCEPTION = 1002

_CODE_NAMES = {
    BAD_ARGUMENTS: "BAD_ARGUMENTS",
    CHECKSUM_DOESNT_MATCH: "CHECKSUM_DOESNT_MATCH",
    NOT_IMPLEMENTED: "NOT_IMPLEMENTED",
    SYNTAX_ERROR: "SYNTAX_ERROR",
    UNKNOWN_FORMAT: "UNKNOWN_FORMAT",
    UNKNOWN_COMPRESSION_METHOD: "UNKNOWN_COMPRESSION_METHOD",
    UNKNOWN_PACKET_FROM_CLIENT: "UNKNOWN_PACKET_FROM_CLIENT",
    UNEXPECTED_PACKET_FROM_CLIENT: "UNEXPECTED_PACKET_FROM_CLIENT",
    UNKNOWN_SETTING: "UNKNOWN_SETTING",
    READONLY: "READONLY",
    TOO_MANY_SIMULTANEOUS_QUERIES: "TOO_MANY_SIMULTANEOUS_QUERIES",
    NETWORK_ERROR: "NETWORK_ERROR",
    QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING: "QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING",
    QUERY_IS_TOO_LARGE: "QUERY_IS_TOO_LARGE",
    NOT_ENOUGH_SPACE: "NOT_ENOUGH_SPACE",
    TOO_LARGE_SIZE_COMPRESSED: "TOO_LARGE_SIZE_COMPRESSED",
    CANNOT_DECOMPRESS: "CANNOT_DECOMPRESS",
    SESSION_NOT_FOUND: "SESSION_NOT_FOUND",
    SESSION_IS_LOCKED: "SESSION_IS_LOCKED",
    INVALID_SESSION_TIMEOUT: "INVALID_SESSION_TIMEOUT",
    HTTP_LENGTH_REQUIRED: "HTTP_LENGTH_REQUIRED",
    TOO_MANY_ROWS_OR_BYTES: "TOO_MANY_ROWS_OR_BYTES",
    ACCESS_DENIED: "ACCESS_DENIED",
    AUTHENTICATION_FAILED: "AUTHENTICATION_FAILED",
    UNKNOWN_EXCEPTION: "UNKNOWN_EXCEPTION",
}

# ClickHouse's exceptionCodeToHTTPStatus (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp); the numbers are
# those the engine's errorCodeToName() gives for the names listed there.
_STATUS_GROUPS: dict[int, tuple[int, ...]] = {
    401: (194,),
    403: (192, 193, 497, 512, 516),
    400: (6, 8, 15, 25, 26, 27, 36, 37, 38, 41, 44, 53, 62, 72, 117, 123, 167, 168, 223, 321, 376, 427, 441, 675, 676),
    404: (46, 47, 50, 56, 60, 63, 73, 78, 81, 115, 152, 336, 511),
    413: (229,),
    501: (48,),
    503: (76, 209, 439),
    411: (381,),
    408: (159,),
    415: (779,),
}
_STATUS_BY_CODE = {code: status for status, codes in _STATUS_GROUPS.items() for code in codes}

# Parameters the HTTP handler consumes itself; every other parameter is a setting.
RESERVED_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "compress",
        "decompress",
        "user",
        "password",
        "quota_key",
        "query_id",
        "stacktrace",
        "buffer_size",
        "wait_end_of_query",
        "session_id",
        "session_timeout",
        "session_check",
        "client_protocol_version",
        "close_session",
        "role",
    }
)
QUERY_PARAM_PREFIX = "param_"

# Settings that only shape the HTTP exchange; the server honours them instead of the engine.
HTTP_LAYER_SETTINGS = frozenset(
    {
        "enable_http_compression",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "cancel_http_readonly_queries_on_client_close",
        "http_zlib_compression_level",
        "http_response_buffer_size",
        "http_wait_end_of_query",
        "http_write_exception_in_output_format",
        "add_http_cors_header",
        "http_native_compression_disable_checksumming_on_decompress",
    }
)

MAX_QUERY_ID_CHARS = 128
_QUERY_ID = re.compile(rf"[!-~](?:[ -~]{{0,{MAX_QUERY_ID_CHARS - 2}}}[!-~])?")
_ENGINE_ERROR = re.compile(r"Code: (\d+)\. (?:DB::Exception: )?")


class QueryError(TickwaveError):
    """A request failed the way ClickHouse reports failures: a code and a message.

    Attributes:
        code: the ClickHouse error code (e.g. 62 for SYNTAX_ERROR).
        message: the text after ``DB::Exception:``, without the trailing ``(NAME)``.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"Code: {code}. {message}")
        self.code = code
        self.message = message
        self.query_text = ""  # the refused request's SQL, for the access log

    @property
    def http_status(self) -> int:
        """The HTTP status ClickHouse answers with for this code."""
        return http_status_for(self.code)


_PRETTY_BREAK = re.compile(r"([(,])\n\s*")


def http_status_for(code: int) -> int:
    """Return the HTTP status ClickHouse uses for an error code (500 when unlisted)."""
    return _STATUS_BY_CODE.get(code, 500)


def error_text(code: int, message: str, version: str) -> str:
    """Return the response body ClickHouse sends for an error: ``Code: N. DB::Exception: ... (NAME) (version V)``."""
    name = _CODE_NAMES.get(code)
    suffix = f" ({name})" if name and not message.rstrip().endswith(f"({name})") else ""
    versioned = "" if "(version " in message else f" (version {version})"
    return f"Code: {code}. DB::Exception: {message}{suffix}{versioned}\n"


def one_line_type(name: str) -> str:
    """Return a type's name as ClickHouse's ``getName`` writes it: a named tuple on one line.

    ``DESCRIBE`` prints such tuples over several lines (``print_pretty_type_names``); a native
    client compares and parses the one-line name. A literal inside a type name escapes its line
    breaks, so every line break here is the pretty printer's.
    """
    return _PRETTY_BREAK.sub(lambda match: match.group(1) + (" " if match.group(1) == "," else ""), name)


def engine_error(text: str) -> QueryError:
    """Turn an engine exception's text into a QueryError with the innermost code it names."""
    codes = _ENGINE_ERROR.findall(text)
    if not codes:
        return QueryError(UNKNOWN_EXCEPTION, text.strip() or "unknown engine error")
    # chdb sometimes nests "Code: N. DB::Exception: Code: N. DB::Exception: ..."; keep the inner text.
    inner = list(_ENGINE_ERROR.finditer(text))[-1]
    return QueryError(int(codes[-1]), text[inner.end() :].strip())


@dataclass(frozen=True)
class Summary:
    """Counters of one query, sent as ``X-ClickHouse-Summary`` (ClickHouse sends numbers as strings)."""

    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    result_rows: int = 0
    result_bytes: int = 0
    elapsed_ns: int = 0

    def header(self) -> str:
        """Return the header value in ClickHouse's layout."""
        return json.dumps(
            {
                "read_rows": str(self.read_rows),
                "read_bytes": str(self.read_bytes),
                "written_rows": str(self.written_rows),
                "written_bytes": str(self.written_bytes),
                "total_rows_to_read": str(self.read_rows),
                "result_rows": str(self.result_rows),
                "result_bytes": str(self.result_bytes),
                "elapsed_ns": str(self.elapsed_ns),
            },
            separators=(",", ":"),
        )


_TEXT = "text/plain; charset=UTF-8"
_CONTENT_TYPES = {
    "tabseparated": "text/tab-separated-values; charset=UTF-8",
    "tsv": "text/tab-separated-values; charset=UTF-8",
    "csv": "text/csv; charset=UTF-8; header=absent",
    "csvwithnames": "text/csv; charset=UTF-8; header=present",
    "json": "application/json; charset=UTF-8",
    "jsoncompact": "application/json; charset=UTF-8",
    "jsoneachrow": "application/x-ndjson; charset=UTF-8",
    "ndjson": "application/x-ndjson; charset=UTF-8",
    "jsonlines": "application/x-ndjson; charset=UTF-8",
    "xml": "application/xml; charset=UTF-8",
}
_BINARY_PREFIXES = ("native", "rowbinary", "arrow", "parquet", "orc", "avro", "protobuf", "capnproto", "msgpack", "npy")


def content_type_for(output_format: str) -> str:
    """Return the Content-Type ClickHouse uses for an output format."""
    lowered = output_format.lower()
    if lowered in _CONTENT_TYPES:
        return _CONTENT_TYPES[lowered]
    if lowered.startswith(_BINARY_PREFIXES):
        return "application/octet-stream"
    if lowered.startswith(("tabseparated", "tsv")):
        return _CONTENT_TYPES["tsv"]
    if lowered.startswith("json"):
        return _CONTENT_TYPES["json"]
    return _TEXT


def is_setting_param(name: str) -> bool:
    """Return True when a URL parameter is a ClickHouse setting (not reserved, not ``param_*``)."""
    return bool(name) and name not in RESERVED_PARAMS and not name.startswith(QUERY_PARAM_PREFIX)


def valid_query_id(query_id: str) -> str:
    """Return ``query_id`` (empty: none given) if it is a valid id, whatever the transport.

    The HTTP interface echoes it in ``X-ClickHouse-Query-Id``; a control character in it made the
    HTTP server fail while writing the response headers, after the query had started.

    Raises:
        QueryError: BAD_ARGUMENTS for an id that is not 1 to 128 printable ASCII characters.
    """
    if query_id and not _QUERY_ID.fullmatch(query_id):
        raise QueryError(
            BAD_ARGUMENTS,
            f"Invalid query_id: it must be 1 to {MAX_QUERY_ID_CHARS} printable ASCII characters, "
            f"without leading or trailing spaces",
        )
    return query_id
