"""What a read-only request may contain: node kinds of ``EXPLAIN AST``, functions, tables, columns.

Every list here is an allow-list: whatever is not named is refused, including what a later
ClickHouse adds. The node kinds are the ``getID`` names of ClickHouse's parser classes
(``src/Parsers/AST*.h``) that a read needs. The functions come from the engine's own catalog
(``system.functions``) by what they do (:data:`ALLOWED_CATEGORIES`), plus a short list of
functions whose category is ``Other`` or ``Internal`` but that only compute
(:data:`ALLOWED_FUNCTIONS`) and the few names the parser writes that the catalog does not list
(:data:`PARSER_FUNCTIONS`). A function is allowed only if it is also in the reviewed snapshot
``allowed_functions.txt`` (see :mod:`warehouse_server.security.catalog`), so a new ClickHouse's
functions stay refused until a person has read them.
"""

from __future__ import annotations

# Statements a read-only request may be (the root of the tree, or what an EXPLAIN explains).
READ_ROOTS = frozenset(
    {
        "SelectWithUnionQuery",
        "SelectIntersectExceptQuery",
        "SelectQuery",
        "ShowTables",
        "ShowColumns",
        "ShowCreateTableQuery",
        "ShowCreateDatabaseQuery",
        "ShowCreateViewQuery",
        "ShowCreateDictionaryQuery",
        "ExistsTableQuery",
        "ExistsDatabaseQuery",
        "ExistsViewQuery",
        "ExistsDictionaryQuery",
        "DescribeQuery",
        "Explain",
        "UseQuery",
    }
)
# Parts of a read. Not here, so refused: ColumnsApplyTransformer and ColumnsReplaceTransformer (the
# dump does not name the function they call: ``* APPLY(file)``), and every other statement or clause.
BODY_KINDS = frozenset(
    {
        "ExpressionList",
        "Function",
        "Identifier",
        "Literal",
        "Asterisk",
        "QualifiedAsterisk",
        "ColumnsRegexpMatcher",
        "ColumnsListMatcher",
        "QualifiedColumnsRegexpMatcher",
        "QualifiedColumnsListMatcher",
        "ColumnsTransformerList",
        "ColumnsExceptTransformer",
        "TablesInSelectQuery",
        "TablesInSelectQueryElement",
        "TableExpression",
        "TableIdentifier",
        "TableJoin",
        "ArrayJoin",
        "Subquery",
        "WithElement",
        "OrderByElement",
        "InterpolateElement",
        "WindowDefinition",
        "WindowListElement",
        "SampleRatio",
        "Set",  # SETTINGS: refused to the analyst; a GET of the service user (readonly=2) may set
    }
)
ALLOWED_NODE_KINDS = READ_ROOTS | BODY_KINDS
# A Literal is a value only under these; under a statement it is an INTO OUTFILE target or its
# compression (ASTQueryWithOutput's out_file, compression, compression_level), in any statement.
LITERAL_PARENTS = frozenset(
    {
        "ExpressionList",
        "SelectQuery",
        "OrderByElement",
        "WindowDefinition",
        "InterpolateElement",
        "SampleRatio",
    }
)

ALLOWED_CATEGORIES = frozenset(
    {
        "Arithmetic",
        "Comparison",
        "Logical",
        "Conditional",
        "Rounding",
        "Mathematical",
        "Null",
        "String",
        "String Search",
        "String Splitting",
        "String Replacement",
        "Dates and Times",
        "Arrays",
        "Tuple",
        "Map",
        "JSON",
        "Hash",
        "Type Conversion",
        "IP Address",  # conversions and range tests of addresses held in columns: no lookup, no socket
        "Aggregate Functions",  # with the window functions (row_number, lagInFrame...), which the engine files here
    }
)
# Category Other or Internal, but they only compute or read the request's own state: ``version``,
# ``revision`` and ``displayName`` (clickhouse-connect and clickhouse-go, inside Grafana's plugin,
# ask for them when they connect: ``SELECT displayName(), version(), revision(), timezone()``),
# ``getSetting`` (the query's own settings, not the server's). ``sleep`` is bounded by
# max_execution_time and the analyst's concurrency slots (clients use it to hold a query open).
ALLOWED_FUNCTIONS = frozenset(
    {
        "version",
        "revision",
        "displayName",
        "getSetting",
        "getSettingOrDefault",
        "currentDatabase",
        "transform",
        "toTypeName",
        "toColumnTypeName",
        "formatReadableSize",
        "formatReadableDecimalSize",
        "formatReadableQuantity",
        "formatReadableTimeDelta",
        "caseWithExpression",
        "_CAST",
        "sleep",
    }
)
# In an allowed category, but a review found that they reach outside the database: refused. A
# function added here leaves the snapshot too (it is regenerated from these lists).
REFUSED_ON_REVIEW: frozenset[str] = frozenset()
# Written by the parser, absent from system.functions: a lambda's body and EXISTS's subquery are
# nodes of the tree, checked like any other; count(DISTINCT x) is the aggregate countDistinct.
PARSER_FUNCTIONS = frozenset({"lambda", "exists", "untuple", "grouping"})
PARSER_AGGREGATES = frozenset({"countDistinct"})

ALLOWED_TABLE_FUNCTIONS = frozenset(
    {
        "numbers",
        "numbers_mt",
        "zeros",
        "zeros_mt",
        "values",
        "generateseries",
        "generate_series",
        "primes",
        "generaterandom",
        "null",
        "view",
        "format",
    }
)

SYSTEM_DATABASE = "system"
# Databases whose tables a read-only user may name: the engines that keep tables the service created in
# the warehouse's own directory. Not here, so refused: the engine's default database (in chdb an Overlay
# whose tables are host files, `default.`/etc/shadow``), Filesystem, S3, URL, MySQL, PostgreSQL... and the
# Memory databases (INFORMATION_SCHEMA) that only re-expose system tables under other names.
STORAGE_DATABASE_ENGINES = frozenset({"Atomic", "Ordinary", "Replicated"})
# Statements whose children name their table (``db table`` in the label, then an Identifier per part) or
# their database; SHOW COLUMNS and SHOW INDEX do not put their table in the tree, so cannot be checked.
TABLE_NAMING_ROOTS = frozenset(
    {
        "ExistsTableQuery",
        "ExistsViewQuery",
        "ExistsDictionaryQuery",
        "ShowCreateTableQuery",
        "ShowCreateViewQuery",
        "ShowCreateDictionaryQuery",
    }
)
DATABASE_NAMING_ROOTS = frozenset({"ExistsDatabaseQuery", "ShowCreateDatabaseQuery", "ShowTables", "UseQuery"})
UNCHECKABLE_ROOTS = frozenset({"ShowColumns"})
# Functions whose second argument, when a bare name, is a table read as a set (``x IN db.t``).
SET_FUNCTIONS = frozenset(
    {"in", "notIn", "globalIn", "globalNotIn", "nullIn", "notNullIn", "globalNullIn", "globalNotNullIn"}
)
ALLOWED_SYSTEM_TABLES = frozenset(
    {
        "one",
        "numbers",
        "numbers_mt",
        "zeros",
        "zeros_mt",
        "databases",
        "tables",
        "columns",
        "functions",
        "table_functions",
        "formats",
        "data_type_families",
        "time_zones",
        "parts",
        "parts_columns",
        "aggregate_function_combinators",
        "table_engines",
        "settings",
        "collations",
        "keywords",
        "build_options",
    }
)
# System tables that also hold host paths (data_path, metadata_path, path, disk_name...): a query
# block reading one may name only these columns, and no ``*`` or COLUMNS() matcher.
SYSTEM_TABLE_COLUMNS = {
    "databases": frozenset({"name", "database", "engine", "comment"}),  # database: an alias of name
    "tables": frozenset(
        {
            "database",
            "name",
            "table",  # an alias of name
            "engine",
            "is_temporary",
            "total_rows",
            "total_bytes",
            "total_bytes_uncompressed",
            "parts",
            "active_parts",
            "total_marks",
            "comment",
            "partition_key",
            "sorting_key",
            "primary_key",
            "sampling_key",
            "metadata_modification_time",
            "has_own_data",
        }
    ),
    "parts": frozenset(
        {
            "database",
            "table",
            "partition",
            "partition_id",
            "name",
            "part_type",
            "active",
            "rows",
            "marks",
            "bytes_on_disk",
            "data_compressed_bytes",
            "data_uncompressed_bytes",
            "modification_time",
            "min_time",
            "max_time",
            "min_date",
            "max_date",
            "min_block_number",
            "max_block_number",
            "level",
        }
    ),
    "parts_columns": frozenset(
        {
            "database",
            "table",
            "partition",
            "name",
            "active",
            "rows",
            "column",
            "type",
            "column_position",
            "column_bytes_on_disk",
            "column_data_compressed_bytes",
            "column_data_uncompressed_bytes",
        }
    ),
}
# Output formats a read-only request may ask for (lower case: the check ignores case). Every output
# format of the engine is either here or on REFUSED_OUTPUT_FORMATS, with the reason: a unit test
# compares the two lists with ``system.formats``, so a new ClickHouse's formats are reviewed before
# a read-only user gets them.
OUTPUT_FORMATS = frozenset(
    {
        "arrow",
        "arrowstream",
        "avro",
        "bsoneachrow",
        "buffers",
        "csv",
        "csvwithnames",
        "csvwithnamesandtypes",
        "customseparated",
        "customseparatedwithnames",
        "customseparatedwithnamesandtypes",
        "geojson",
        "hash",
        "hivetext",
        "json",
        "jsoncolumns",
        "jsoncolumnswithmetadata",
        "jsoncompact",
        "jsoncompactcolumns",
        "jsoncompacteachrow",
        "jsoncompacteachrowwithnames",
        "jsoncompacteachrowwithnamesandtypes",
        "jsoncompacteachrowwithprogress",
        "jsoncompactstrings",
        "jsoncompactstringseachrow",
        "jsoncompactstringseachrowwithnames",
        "jsoncompactstringseachrowwithnamesandtypes",
        "jsoncompactstringseachrowwithprogress",
        "jsoneachrow",
        "jsoneachrowwithprogress",
        "jsonl",
        "jsonlines",
        "jsonobjecteachrow",
        "jsonstrings",
        "jsonstringseachrow",
        "jsonstringseachrowwithprogress",
        "lineasstring",
        "lineasstringwithnames",
        "lineasstringwithnamesandtypes",
        "md",
        "markdown",
        "msgpack",
        "mysqlwire",
        "ndjson",
        "native",
        "npy",
        "null",
        "odbcdriver2",
        "orc",
        "png",
        "parquet",
        "postgresqlwire",
        "pretty",
        "prettycompact",
        "prettycompactmonoblock",
        "prettycompactnoescapes",
        "prettycompactnoescapesmonoblock",
        "prettyjsoneachrow",
        "prettyjsonlines",
        "prettymonoblock",
        "prettyndjson",
        "prettynoescapes",
        "prettynoescapesmonoblock",
        "prettyspace",
        "prettyspacemonoblock",
        "prettyspacenoescapes",
        "prettyspacenoescapesmonoblock",
        "prometheus",
        "raw",
        "rawblob",
        "rawwithnames",
        "rawwithnamesandtypes",
        "rowbinary",
        "rowbinarywithnames",
        "rowbinarywithnamesandtypes",
        "sqlinsert",
        "tskv",
        "tsv",
        "tsvraw",
        "tsvrawwithnames",
        "tsvrawwithnamesandtypes",
        "tsvwithnames",
        "tsvwithnamesandtypes",
        "tabseparated",
        "tabseparatedraw",
        "tabseparatedrawwithnames",
        "tabseparatedrawwithnamesandtypes",
        "tabseparatedwithnames",
        "tabseparatedwithnamesandtypes",
        "values",
        "vertical",
        "xml",
    }
)
REFUSED_OUTPUT_FORMATS = {
    "protobuf": "reads a schema file of the host (format_schema)",
    "protobuflist": "reads a schema file of the host (format_schema)",
    "protobufsingle": "reads a schema file of the host (format_schema)",
    "template": "reads template files of the host (format_template_*)",
    "avroconfluent": "reaches a schema registry over the network",
}
# Statements under which an Identifier child can only be the FORMAT clause (under SHOW and EXISTS
# it may also be a database or table name, so there only the engine's format names are checked).
FORMAT_ONLY_ROOTS = frozenset({"SelectWithUnionQuery", "SelectIntersectExceptQuery", "DescribeQuery", "Explain"})
ENGINE_OUTPUT_FORMATS = OUTPUT_FORMATS | frozenset(REFUSED_OUTPUT_FORMATS)
