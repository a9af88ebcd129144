// What DBeaver, DataGrip and Metabase do through ClickHouse's JDBC driver, step by step, with the
// driver's default URL. tests/conformance/jdbc.py compiles it with javac and runs it once per user:
//
//   java -cp <driver jars>:<classes> JdbcConformance service|analyst
//
// The URL, the user, its password, the database and the table come from the environment (JDBC_URL,
// JDBC_USER, JDBC_PASSWORD, JDBC_DATABASE, JDBC_TABLE), never from the command line. Each step prints one line,
// "<step>\tok\t<detail>" or "<step>\tfail\t<error>", and the exit status is the number of failed
// steps (capped at 100). The service user creates the table of every common type and writes its rows
// in one batch; either user then connects, browses and reads them back as DBeaver would.

import java.math.BigDecimal;
import java.math.BigInteger;
import java.net.InetAddress;
import java.sql.Array;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.Driver;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.UUID;

public final class JdbcConformance {
    /** The class DBeaver, DataGrip and Metabase name for ClickHouse: it hands the URL to jdbc-v2. */
    static final String DRIVER = "com.clickhouse.jdbc.ClickHouseDriver";

    /** Rows the service user writes in one batch. */
    static final int BATCH_ROWS = 1000;

    interface Setter {
        void set(PreparedStatement statement, int index, int row) throws Exception;
    }

    interface Reader {
        Object read(ResultSet result, String column) throws Exception;
    }

    /** One column of the table: its ClickHouse type, how a row's value is bound, read and expected. */
    record Column(String name, String type, Setter setter, Reader reader, Expected expected) {}

    interface Expected {
        Object value(int row) throws Exception;
    }

    static final ZonedDateTime EPOCH_2024 = ZonedDateTime.of(2024, 2, 29, 23, 59, 58, 0, ZoneOffset.UTC);

    static List<Column> columns() throws Exception {
        List<Column> columns = new ArrayList<>();
        columns.add(new Column("id", "UInt32", (s, i, r) -> s.setInt(i, r), ResultSet::getInt, r -> r));
        columns.add(new Column("i8", "Int8", (s, i, r) -> s.setByte(i, (byte) (r % 128 - 64)), ResultSet::getByte,
                r -> (byte) (r % 128 - 64)));
        columns.add(new Column("i16", "Int16", (s, i, r) -> s.setShort(i, (short) (-r * 7)), ResultSet::getShort,
                r -> (short) (-r * 7)));
        columns.add(new Column("i32", "Int32", (s, i, r) -> s.setInt(i, -r * 100_003), ResultSet::getInt,
                r -> -r * 100_003));
        columns.add(new Column("i64", "Int64", (s, i, r) -> s.setLong(i, -6_400_000_000L * r), ResultSet::getLong,
                r -> -6_400_000_000L * r));
        columns.add(new Column("u8", "UInt8", (s, i, r) -> s.setInt(i, 255 - r % 256), ResultSet::getInt,
                r -> 255 - r % 256));
        columns.add(new Column("u16", "UInt16", (s, i, r) -> s.setInt(i, 65_535 - r), ResultSet::getInt,
                r -> 65_535 - r));
        columns.add(new Column("u32", "UInt32", (s, i, r) -> s.setLong(i, 4_294_967_295L - r), ResultSet::getLong,
                r -> 4_294_967_295L - r));
        columns.add(new Column("u64", "UInt64", (s, i, r) -> s.setObject(i, u64(r)),
                (x, c) -> x.getObject(c, BigInteger.class), JdbcConformance::u64));
        columns.add(new Column("i128", "Int128", (s, i, r) -> s.setObject(i, i128(r)),
                (x, c) -> x.getObject(c, BigInteger.class), JdbcConformance::i128));
        columns.add(new Column("f32", "Float32", (s, i, r) -> s.setFloat(i, r + 0.5f), ResultSet::getFloat,
                r -> r + 0.5f));
        columns.add(new Column("f64", "Float64", (s, i, r) -> s.setDouble(i, -r / 4.0), ResultSet::getDouble,
                r -> -r / 4.0));
        columns.add(new Column("d18", "Decimal(18, 4)", (s, i, r) -> s.setBigDecimal(i, d18(r)),
                ResultSet::getBigDecimal, JdbcConformance::d18));
        columns.add(new Column("d38", "Decimal(38, 10)", (s, i, r) -> s.setBigDecimal(i, d38(r)),
                ResultSet::getBigDecimal, JdbcConformance::d38));
        columns.add(new Column("flag", "Bool", (s, i, r) -> s.setBoolean(i, r % 2 == 0), ResultSet::getBoolean,
                r -> r % 2 == 0));
        columns.add(new Column("text", "String", (s, i, r) -> s.setString(i, text(r)), ResultSet::getString,
                JdbcConformance::text));
        columns.add(new Column("code", "FixedString(6)", (s, i, r) -> s.setString(i, code(r)),
                ResultSet::getString, JdbcConformance::code));
        columns.add(new Column("day", "Date", (s, i, r) -> s.setObject(i, day(r)),
                (x, c) -> x.getObject(c, LocalDate.class), JdbcConformance::day));
        columns.add(new Column("day32", "Date32", (s, i, r) -> s.setObject(i, day(r).minusYears(120)),
                (x, c) -> x.getObject(c, LocalDate.class), r -> day(r).minusYears(120)));
        columns.add(new Column("at", "DateTime('UTC')", (s, i, r) -> s.setObject(i, at(r)),
                (x, c) -> x.getObject(c, ZonedDateTime.class).toInstant(), r -> at(r).toInstant()));
        columns.add(new Column("at_ms", "DateTime64(3, 'UTC')", (s, i, r) -> s.setObject(i, atMs(r)),
                (x, c) -> x.getObject(c, ZonedDateTime.class).toInstant(), r -> atMs(r).toInstant()));
        columns.add(new Column("uuid", "UUID", (s, i, r) -> s.setObject(i, uuid(r)),
                (x, c) -> x.getObject(c, UUID.class), JdbcConformance::uuid));
        columns.add(new Column("ip4", "IPv4", (s, i, r) -> s.setObject(i, InetAddress.getByName(ip4(r))),
                (x, c) -> x.getObject(c, InetAddress.class), r -> InetAddress.getByName(ip4(r))));
        columns.add(new Column("ip6", "IPv6", (s, i, r) -> s.setObject(i, InetAddress.getByName(ip6(r))),
                (x, c) -> x.getObject(c, InetAddress.class), r -> InetAddress.getByName(ip6(r))));
        columns.add(new Column("side", "Enum8('buy' = 1, 'sell' = -1)",
                (s, i, r) -> s.setString(i, r % 3 == 0 ? "sell" : "buy"), ResultSet::getString,
                r -> r % 3 == 0 ? "sell" : "buy"));
        columns.add(new Column("symbol", "LowCardinality(String)", (s, i, r) -> s.setString(i, "SYM" + r % 5),
                ResultSet::getString, r -> "SYM" + r % 5));
        columns.add(new Column("maybe", "Nullable(Int32)",
                (s, i, r) -> {
                    if (r % 4 == 0) {
                        s.setNull(i, Types.INTEGER);
                    } else {
                        s.setInt(i, r);
                    }
                },
                (x, c) -> x.getObject(c, Integer.class), r -> r % 4 == 0 ? null : r));
        columns.add(new Column("ints", "Array(Int32)", (s, i, r) -> s.setObject(i, ints(r)),
                (x, c) -> list(x.getArray(c)), r -> Arrays.asList((Object[]) ints(r))));
        columns.add(new Column("words", "Array(String)", (s, i, r) -> s.setObject(i, words(r)),
                (x, c) -> list(x.getArray(c)), r -> Arrays.asList((Object[]) words(r))));
        columns.add(new Column("attrs", "Map(String, Int32)", (s, i, r) -> s.setObject(i, attrs(r)),
                (x, c) -> x.getObject(c, Map.class), JdbcConformance::attrs));
        return columns;
    }

    static BigInteger u64(int row) {
        return new BigInteger("18446744073709551615").subtract(BigInteger.valueOf(row));
    }

    static BigInteger i128(int row) {
        return BigInteger.ONE.shiftLeft(127).negate().add(BigInteger.valueOf(row));
    }

    static BigDecimal d18(int row) {
        return new BigDecimal("12345.6789").add(BigDecimal.valueOf(row)).negate();
    }

    static BigDecimal d38(int row) {
        return new BigDecimal("1234567890123456789012345678.0123456789").add(BigDecimal.valueOf(row));
    }

    static String text(int row) {
        return "row " + row + ": h\u00e9llo, 'w\u00f6rld'\t\"q\"\\ \u20ac\n";
    }

    static String code(int row) {
        return String.format("C%05d", row);
    }

    static LocalDate day(int row) {
        return LocalDate.of(2024, 2, 29).plusDays(row);
    }

    static ZonedDateTime at(int row) {
        return EPOCH_2024.plusSeconds(row * 3_601L);
    }

    static ZonedDateTime atMs(int row) {
        return EPOCH_2024.plusNanos(row * 1_001_000_000L + 123_000_000L);
    }

    static UUID uuid(int row) {
        return new UUID(0x123e4567e89b12d3L + row, 0xa456426614174000L - row);
    }

    static String ip4(int row) {
        return "10.1." + row / 256 + "." + row % 256;
    }

    static String ip6(int row) {
        return "2001:db8::" + Integer.toHexString(row + 1);
    }

    static Integer[] ints(int row) {
        return new Integer[] {row, -row, Integer.MAX_VALUE};
    }

    static String[] words(int row) {
        return new String[] {"a" + row, "", "\u00fc'"};
    }

    static Map<String, Integer> attrs(int row) {
        Map<String, Integer> map = new LinkedHashMap<>();
        map.put("lots", row);
        map.put("ticks", row * 2);
        return map;
    }

    static List<Object> list(Array array) throws SQLException {
        Object values = array.getArray();
        List<Object> items = new ArrayList<>();
        for (int i = 0; i < java.lang.reflect.Array.getLength(values); i++) {
            items.add(java.lang.reflect.Array.get(values, i));
        }
        return items;
    }

    // ---- the run --------------------------------------------------------------------------------

    final Connection connection;
    final String database;
    final String table;
    int failures;

    JdbcConformance(Connection connection, String database, String table) {
        this.connection = connection;
        this.database = database;
        this.table = table;
    }

    interface Step {
        String run() throws Exception;
    }

    void step(String name, Step step) {
        String line;
        try {
            String detail = step.run();
            line = name + "\tok\t" + (detail == null ? "" : detail);
        } catch (Throwable error) {
            failures++;
            line = name + "\tfail\t" + describe(error);
        }
        System.out.println(line.replace('\n', ' ').replace('\r', ' '));
        System.out.flush();
    }

    static String describe(Throwable error) {
        StringBuilder text = new StringBuilder(error.getClass().getSimpleName() + ": " + error.getMessage());
        for (Throwable cause = error.getCause(); cause != null && cause != error; cause = cause.getCause()) {
            String message = String.valueOf(cause.getMessage());
            if (!text.toString().contains(message)) {
                text.append(" <- ").append(cause.getClass().getSimpleName()).append(": ").append(message);
            }
        }
        return text.length() > 2000 ? text.substring(0, 2000) : text.toString();
    }

    static void check(boolean condition, String message) {
        if (!condition) {
            throw new AssertionError(message);
        }
    }

    String qualified() {
        return "`" + database + "`.`" + table + "`";
    }

    List<String> strings(ResultSet result, String column) throws SQLException {
        List<String> values = new ArrayList<>();
        try (result) {
            while (result.next()) {
                values.add(result.getString(column));
            }
        }
        return values;
    }

    int count(ResultSet result) throws SQLException {
        int rows = 0;
        try (result) {
            while (result.next()) {
                rows++;
            }
        }
        return rows;
    }

    /** The service user's part: the table of every common type, and its rows in one batch. */
    void write(List<Column> columns) {
        step("create table", () -> {
            StringBuilder ddl = new StringBuilder("CREATE TABLE " + qualified() + " (");
            for (int i = 0; i < columns.size(); i++) {
                ddl.append(i == 0 ? "" : ", ").append('`').append(columns.get(i).name()).append("` ")
                        .append(columns.get(i).type());
            }
            ddl.append(") ENGINE = MergeTree ORDER BY (id, code)");
            try (Statement statement = connection.createStatement()) {
                statement.execute(ddl.toString());
            }
            return null;
        });
        step("batch insert", () -> {
            StringBuilder sql = new StringBuilder("INSERT INTO " + qualified() + " VALUES (");
            sql.append("?, ".repeat(columns.size() - 1)).append("?)");
            int[] counts;
            try (PreparedStatement insert = connection.prepareStatement(sql.toString())) {
                for (int row = 0; row < BATCH_ROWS; row++) {
                    for (int i = 0; i < columns.size(); i++) {
                        columns.get(i).setter().set(insert, i + 1, row);
                    }
                    insert.addBatch();
                }
                counts = insert.executeBatch();
            }
            try (Statement statement = connection.createStatement();
                    ResultSet result = statement.executeQuery("SELECT count() FROM " + qualified())) {
                check(result.next(), "no count");
                check(result.getLong(1) == BATCH_ROWS, "rows landed: " + result.getLong(1));
            }
            return counts.length + " batched, " + BATCH_ROWS + " rows landed";
        });
    }

    /** What DBeaver does when a connection opens. */
    void connect() {
        step("isValid", () -> {
            check(connection.isValid(5), "isValid answered false");
            return null;
        });
        step("getMetaData", () -> {
            DatabaseMetaData meta = connection.getMetaData();
            return meta.getDatabaseProductName() + " " + meta.getDatabaseProductVersion() + "; "
                    + meta.getDriverName() + " " + meta.getDriverVersion() + "; quote "
                    + meta.getIdentifierQuoteString() + "; user " + meta.getUserName();
        });
        step("server functions and keywords", () -> {
            DatabaseMetaData meta = connection.getMetaData();
            String all = meta.getSQLKeywords() + meta.getNumericFunctions() + meta.getStringFunctions()
                    + meta.getSystemFunctions() + meta.getTimeDateFunctions();
            return all.length() + " characters";
        });
        step("getTypeInfo", () -> count(connection.getMetaData().getTypeInfo()) + " types");
        step("getTableTypes", () -> String.join(",", strings(connection.getMetaData().getTableTypes(), "TABLE_TYPE")));
        step("getCatalog and getSchema", () -> connection.getCatalog() + " / " + connection.getSchema());
        step("getCatalogs", () -> {
            List<String> names = strings(connection.getMetaData().getCatalogs(), "TABLE_CAT");
            return names.size() + " catalogs";
        });
        step("getSchemas", () -> {
            List<String> names = strings(connection.getMetaData().getSchemas(), "TABLE_SCHEM");
            check(names.contains(database), database + " not among " + names);
            return names.size() + " schemas";
        });
        step("SELECT version()", () -> scalar("SELECT version()"));
        step("SELECT currentDatabase()", () -> {
            String current = scalar("SELECT currentDatabase()");
            check(database.equals(current), "current database " + current);
            return current;
        });
        step("SELECT timezone()", () -> scalar("SELECT timezone()"));
    }

    String scalar(String sql) throws SQLException {
        try (Statement statement = connection.createStatement(); ResultSet result = statement.executeQuery(sql)) {
            check(result.next(), "no row");
            return result.getString(1);
        }
    }

    /** What DBeaver does when a table is opened in the navigator: its columns, keys, indexes, data. */
    void browse(List<Column> columns) {
        step("getTables", () -> {
            List<String> names = strings(connection.getMetaData().getTables(null, database, "%", null), "TABLE_NAME");
            check(names.contains(table), table + " not among " + names);
            return names.size() + " tables";
        });
        step("getTables by type TABLE", () -> {
            List<String> names = strings(
                    connection.getMetaData().getTables(null, database, table, new String[] {"TABLE"}), "TABLE_NAME");
            check(names.equals(List.of(table)), "found " + names);
            return null;
        });
        step("getColumns", () -> {
            Map<String, String> found = new LinkedHashMap<>();
            try (ResultSet result = connection.getMetaData().getColumns(null, database, table, "%")) {
                while (result.next()) {
                    found.put(result.getString("COLUMN_NAME"), result.getString("TYPE_NAME"));
                }
            }
            for (Column column : columns) {
                check(found.containsKey(column.name()), column.name() + " not among " + found.keySet());
            }
            check(found.get("d18").startsWith("Decimal"), "d18 typed " + found.get("d18"));
            return found.size() + " columns";
        });
        step("getPrimaryKeys", () -> {
            List<String> keys = strings(connection.getMetaData().getPrimaryKeys(null, database, table), "COLUMN_NAME");
            check(keys.size() == 2 && keys.containsAll(List.of("id", "code")), "primary key " + keys);
            return String.join(",", keys);
        });
        step("getImportedKeys", () -> count(connection.getMetaData().getImportedKeys(null, database, table)) + " keys");
        step("getExportedKeys", () -> count(connection.getMetaData().getExportedKeys(null, database, table)) + " keys");
        step("getIndexInfo", () -> count(connection.getMetaData().getIndexInfo(null, database, table, false, true))
                + " indexes");
        step("getFunctions", () -> count(connection.getMetaData().getFunctions(null, null, "%")) + " functions");
        step("browse: first 200 rows", () -> {
            try (Statement statement = connection.createStatement()) {
                statement.setMaxRows(200);
                try (ResultSet result = statement.executeQuery("SELECT * FROM " + qualified())) {
                    ResultSetMetaData meta = result.getMetaData();
                    check(meta.getColumnCount() == columns.size(), meta.getColumnCount() + " columns");
                    for (int i = 1; i <= meta.getColumnCount(); i++) {
                        check(meta.getColumnName(i).equals(columns.get(i - 1).name()), "column " + meta.getColumnName(i));
                        meta.getColumnTypeName(i);
                        meta.getColumnClassName(i);
                    }
                    int rows = 0;
                    while (result.next()) {
                        for (int i = 1; i <= meta.getColumnCount(); i++) {
                            result.getObject(i);
                        }
                        rows++;
                    }
                    check(rows == 200, rows + " rows");
                }
            }
            return null;
        });
        step("browse: row count", () -> {
            String rows = scalar("SELECT count(*) FROM " + qualified());
            check(rows.equals(String.valueOf(BATCH_ROWS)), rows + " rows");
            return rows;
        });
    }

    /** Every column of every row read back with the getter a tool uses for its type, as written. */
    void roundTrip(List<Column> columns) {
        for (Column column : columns) {
            step("type " + column.name() + " " + column.type(), () -> {
                try (Statement statement = connection.createStatement();
                        ResultSet result = statement.executeQuery(
                                "SELECT `" + column.name() + "` FROM " + qualified() + " ORDER BY id")) {
                    int row = 0;
                    while (result.next()) {
                        Object got = column.reader().read(result, column.name());
                        Object want = column.expected().value(row);
                        check(same(got, want), "row " + row + ": got " + got + ", want " + want);
                        row++;
                    }
                    check(row == BATCH_ROWS, row + " rows");
                }
                return null;
            });
        }
        step("literals: IP conversions", () -> {
            String value = scalar("SELECT concat(toString(toIPv4('10.0.0.1')), ' ', toString(toIPv6('::1')))");
            check(value.equals("10.0.0.1 ::1"), value);
            return value;
        });
        step("prepared SELECT with parameters", () -> {
            try (PreparedStatement select = connection.prepareStatement(
                    "SELECT count() FROM " + qualified() + " WHERE symbol = ? AND day >= ? AND d18 < ?")) {
                select.setString(1, "SYM1");
                select.setObject(2, day(0));
                select.setBigDecimal(3, BigDecimal.ZERO);
                try (ResultSet result = select.executeQuery()) {
                    check(result.next() && result.getLong(1) == BATCH_ROWS / 5, "count");
                }
            }
            return null;
        });
    }

    static boolean same(Object got, Object want) {
        if (got instanceof BigDecimal a && want instanceof BigDecimal b) {
            return a.compareTo(b) == 0;
        }
        if (got instanceof Map<?, ?> a && want instanceof Map<?, ?> b) {
            return a.size() == b.size() && b.entrySet().stream()
                    .allMatch(e -> Objects.equals(String.valueOf(a.get(e.getKey())), String.valueOf(e.getValue())));
        }
        if (got instanceof List<?> a && want instanceof List<?> b) {
            return a.size() == b.size() && a.toString().equals(b.toString());
        }
        return Objects.equals(got, want);
    }

    /** The analyst is still refused a write through the driver. */
    void refused() {
        step("write refused", () -> {
            try (Statement statement = connection.createStatement()) {
                statement.execute("INSERT INTO " + qualified() + " (id, code) VALUES (1, 'X')");
            } catch (SQLException expected) {
                check(expected.getMessage().contains("164") || expected.getMessage().contains("READONLY"),
                        "refused otherwise: " + expected.getMessage());
                return "refused";
            }
            throw new AssertionError("the analyst's INSERT was accepted");
        });
    }

    public static void main(String[] args) throws Exception {
        String role = args.length == 1 ? args[0] : "";
        if (!role.equals("service") && !role.equals("analyst")) {
            System.err.println("usage: JdbcConformance service|analyst");
            System.exit(2);
        }
        String url = System.getenv("JDBC_URL");
        String table = System.getenv("JDBC_TABLE");
        String database = System.getenv("JDBC_DATABASE");
        Properties properties = new Properties();
        properties.setProperty("user", System.getenv("JDBC_USER"));
        properties.setProperty("password", System.getenv("JDBC_PASSWORD"));
        Driver driver = (Driver) Class.forName(DRIVER).getDeclaredConstructor().newInstance();
        List<Column> columns = columns();
        int failures;
        try (Connection connection = driver.connect(url, properties)) {
            JdbcConformance run = new JdbcConformance(connection, database, table);
            run.step("getConnection", () -> connection.getClass().getName());
            if (role.equals("service")) {
                run.write(columns);
            }
            run.connect();
            run.browse(columns);
            run.roundTrip(columns);
            if (role.equals("analyst")) {
                run.refused();
            }
            failures = run.failures;
        }
        System.exit(Math.min(failures, 100));
    }
}
