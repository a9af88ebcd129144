// Command checker runs every board query through clickhouse-go v2 over HTTP, the client
// inside Grafana's ClickHouse plugin, as the read-only analyst, and checks the columns.
//
// Input: a JSON file (first argument) of queries with their expanded SQL and the columns
// (name, type family: time, number, string, any) their panel needs. Connection: the
// environment variables CHECKER_ADDR (host:port), CHECKER_USER, CHECKER_PASSWORD,
// CHECKER_DATABASE, CHECKER_ROW_LIMIT, CHECKER_QUERY_TIMEOUT_S (the password is never an
// argument), and optionally CHECKER_SECURE=1 (HTTPS) with CHECKER_CA_FILE (the PEM CA the
// server certificate is verified against; empty: the system's roots). The connection is
// opened as the plugin opens it (pkg/plugin/driver.go): HTTP protocol, gzip compression,
// the row limit as the `limit` setting, and over HTTPS a TLS config whose RootCAs hold the
// CA (the plugin's tlsAuthWithCACert); verification is never skipped.
// CHECKER_COMPRESSION (lz4, zstd, gzip or none; gzip when unset, as the plugin) picks
// clickhouse-go's compression: lz4 and zstd are ClickHouse's block framing (compress=1
// responses, decompress=1 inserts). The connection is pinged first (outcome "ping").
// CHECKER_INSERT=TABLE:ROWS (optional) first inserts ROWS rows (number UInt64, text String)
// into TABLE as one batch (outcome "insert").
//
// Output: one JSON line per query (title, columns seen, rows, milliseconds, error). Exit
// status 0 when every query ran and matched, 1 when any did not, 2 on bad input.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

type column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type query struct {
	Title   string   `json:"title"`
	SQL     string   `json:"sql"`
	Columns []column `json:"columns"`
}

type outcome struct {
	Title     string   `json:"title"`
	Columns   []column `json:"columns"`
	Rows      int      `json:"rows"`
	ElapsedMs float64  `json:"elapsed_ms"`
	Error     string   `json:"error,omitempty"`
}

var (
	wrapper  = regexp.MustCompile(`^(Nullable|LowCardinality)\((.*)\)$`)
	families = map[string]*regexp.Regexp{
		"time":   regexp.MustCompile(`^(DateTime64|DateTime|Date32|Date)\b`),
		"number": regexp.MustCompile(`^(U?Int\d+|Float\d+|Decimal\d*|Bool)\b`),
		"string": regexp.MustCompile(`^(String|FixedString|Enum8|Enum16|UUID)\b`),
	}
)

func unwrap(name string) string {
	for {
		match := wrapper.FindStringSubmatch(name)
		if match == nil {
			return name
		}
		name = match[2]
	}
}

func matches(clickhouseType, family string) bool {
	if family == "any" {
		return true
	}
	pattern, ok := families[family]
	return ok && pattern.MatchString(unwrap(clickhouseType))
}

func env(name string) string {
	value, ok := os.LookupEnv(name)
	if !ok {
		fmt.Fprintf(os.Stderr, "checker: %s is not set\n", name)
		os.Exit(2)
	}
	return value
}

// tlsConfig returns the TLS config for CHECKER_SECURE=1 (nil otherwise): the CA file's
// certificates as the only roots, or the system's when no file is named.
func tlsConfig() (*tls.Config, error) {
	if os.Getenv("CHECKER_SECURE") != "1" {
		return nil, nil
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	caFile := os.Getenv("CHECKER_CA_FILE")
	if caFile == "" {
		return config, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	config.RootCAs = pool
	return config, nil
}

// check runs one query, records its columns and row count, and says what is wrong ("" if nothing).
func check(db *sql.DB, q query, result *outcome) string {
	rows, err := db.QueryContext(context.Background(), q.SQL)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return err.Error()
	}
	for _, columnType := range types {
		result.Columns = append(result.Columns, column{Name: columnType.Name(), Type: columnType.DatabaseTypeName()})
	}
	for rows.Next() {
		result.Rows++
	}
	if err := rows.Err(); err != nil {
		return err.Error()
	}
	if len(types) != len(q.Columns) {
		return fmt.Sprintf("%d columns, expected %d", len(types), len(q.Columns))
	}
	var problems []string
	for index, expected := range q.Columns {
		seen := result.Columns[index]
		if seen.Name != expected.Name {
			problems = append(problems, fmt.Sprintf("column %d is %q, expected %q", index+1, seen.Name, expected.Name))
		} else if !matches(seen.Type, expected.Type) {
			problems = append(problems, fmt.Sprintf("%s is %s, expected %s", seen.Name, seen.Type, expected.Type))
		}
	}
	return strings.Join(problems, "; ")
}

var compressions = map[string]clickhouse.CompressionMethod{
	"lz4":  clickhouse.CompressionLZ4,
	"zstd": clickhouse.CompressionZSTD,
	"gzip": clickhouse.CompressionGZIP,
	"none": clickhouse.CompressionNone,
}

// insert writes rows (number, text) into table as one batch: one request, its body compressed as configured.
func insert(db *sql.DB, table string, rows int) string {
	tx, err := db.Begin()
	if err != nil {
		return err.Error()
	}
	statement, err := tx.Prepare("INSERT INTO " + table + " (number, text)")
	if err != nil {
		_ = tx.Rollback()
		return err.Error()
	}
	for number := 0; number < rows; number++ {
		if _, err := statement.Exec(uint64(number), fmt.Sprintf("row %d of the batch", number)); err != nil {
			_ = tx.Rollback()
			return err.Error()
		}
	}
	if err := tx.Commit(); err != nil {
		return err.Error()
	}
	return ""
}

// step runs one named step and writes its outcome line; it returns whether the step failed.
func step(encoder *json.Encoder, title string, run func(*outcome) string) bool {
	result := outcome{Title: title, Columns: []column{}}
	started := time.Now()
	problem := run(&result)
	result.ElapsedMs = float64(time.Since(started).Microseconds()) / 1000
	result.Error = problem
	if err := encoder.Encode(result); err != nil {
		fmt.Fprintf(os.Stderr, "checker: %v\n", err)
		os.Exit(2)
	}
	return problem != ""
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: checker QUERIES.json")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "checker: %v\n", err)
		os.Exit(2)
	}
	var queries []query
	if err := json.Unmarshal(data, &queries); err != nil {
		fmt.Fprintf(os.Stderr, "checker: %s: %v\n", os.Args[1], err)
		os.Exit(2)
	}
	rowLimit, err := strconv.Atoi(env("CHECKER_ROW_LIMIT"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "checker: CHECKER_ROW_LIMIT: %v\n", err)
		os.Exit(2)
	}
	timeout, err := strconv.Atoi(env("CHECKER_QUERY_TIMEOUT_S"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "checker: CHECKER_QUERY_TIMEOUT_S: %v\n", err)
		os.Exit(2)
	}
	tlsSettings, err := tlsConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "checker: CHECKER_CA_FILE: %v\n", err)
		os.Exit(2)
	}
	compressionName := os.Getenv("CHECKER_COMPRESSION")
	if compressionName == "" {
		compressionName = "gzip"
	}
	compression, ok := compressions[compressionName]
	if !ok {
		fmt.Fprintf(os.Stderr, "checker: CHECKER_COMPRESSION %q is not lz4, zstd, gzip or none\n", compressionName)
		os.Exit(2)
	}
	db := clickhouse.OpenDB(&clickhouse.Options{
		Addr:        []string{env("CHECKER_ADDR")},
		Auth:        clickhouse.Auth{Database: env("CHECKER_DATABASE"), Username: env("CHECKER_USER"), Password: env("CHECKER_PASSWORD")},
		Protocol:    clickhouse.HTTP,
		Compression: &clickhouse.Compression{Method: compression},
		DialTimeout: 10 * time.Second,
		ReadTimeout: time.Duration(timeout) * time.Second,
		Settings:    clickhouse.Settings{"limit": rowLimit},
		TLS:         tlsSettings,
	})
	defer db.Close()

	encoder := json.NewEncoder(os.Stdout)
	failed := step(encoder, "ping", func(*outcome) string {
		if err := db.PingContext(context.Background()); err != nil {
			return err.Error()
		}
		return ""
	})
	if target := os.Getenv("CHECKER_INSERT"); target != "" {
		table, count, _ := strings.Cut(target, ":")
		rows, err := strconv.Atoi(count)
		if err != nil {
			fmt.Fprintf(os.Stderr, "checker: CHECKER_INSERT %q is not TABLE:ROWS\n", target)
			os.Exit(2)
		}
		failed = step(encoder, "insert", func(result *outcome) string {
			result.Rows = rows
			return insert(db, table, rows)
		}) || failed
	}
	for _, q := range queries {
		failed = step(encoder, q.Title, func(result *outcome) string { return check(db, q, result) }) || failed
	}
	if failed {
		os.Exit(1)
	}
}
