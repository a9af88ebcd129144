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
	db := clickhouse.OpenDB(&clickhouse.Options{
		Addr:        []string{env("CHECKER_ADDR")},
		Auth:        clickhouse.Auth{Database: env("CHECKER_DATABASE"), Username: env("CHECKER_USER"), Password: env("CHECKER_PASSWORD")},
		Protocol:    clickhouse.HTTP,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionGZIP},
		DialTimeout: 10 * time.Second,
		ReadTimeout: time.Duration(timeout) * time.Second,
		Settings:    clickhouse.Settings{"limit": rowLimit},
		TLS:         tlsSettings,
	})
	defer db.Close()

	failed := false
	encoder := json.NewEncoder(os.Stdout)
	for _, q := range queries {
		result := outcome{Title: q.Title, Columns: []column{}}
		started := time.Now()
		problem := check(db, q, &result)
		result.ElapsedMs = float64(time.Since(started).Microseconds()) / 1000
		if problem != "" {
			result.Error = problem
			failed = true
		}
		if err := encoder.Encode(result); err != nil {
			fmt.Fprintf(os.Stderr, "checker: %v\n", err)
			os.Exit(2)
		}
	}
	if failed {
		os.Exit(1)
	}
}
