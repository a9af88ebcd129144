// Command native runs one round trip through clickhouse-go v2's native protocol (the TCP
// port Grafana's plugin and Go services use in their native mode), as the user given, and
// prints each step's outcome.
//
// Connection: the environment variables NATIVE_ADDR (host:port), NATIVE_USER,
// NATIVE_PASSWORD (never an argument), NATIVE_DATABASE, NATIVE_COMPRESSION (none, lz4 or
// zstd) and NATIVE_WRITES=1 when the user may write (the service user): then it creates a
// table, inserts a batch and reads it back; without it the batch must be refused READONLY.
//
// Output: one JSON line per step (step, rows, error). Exit status 0 when every step went as
// expected, 1 when any did not, 2 on bad input. It lives beside the board checker and shares
// its go.mod, so its modules are the checker's, pinned by the same go.sum.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

type outcome struct {
	Step  string `json:"step"`
	Rows  int    `json:"rows"`
	Error string `json:"error,omitempty"`
}

func compression(name string) (*clickhouse.Compression, error) {
	switch name {
	case "", "none":
		return &clickhouse.Compression{Method: clickhouse.CompressionNone}, nil
	case "lz4":
		return &clickhouse.Compression{Method: clickhouse.CompressionLZ4}, nil
	case "zstd":
		return &clickhouse.Compression{Method: clickhouse.CompressionZSTD}, nil
	}
	return nil, fmt.Errorf("unknown NATIVE_COMPRESSION %q", name)
}

func count(ctx context.Context, conn driver.Conn, sql string, args ...any) (int, error) {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		seen++
	}
	return seen, rows.Err()
}

// variantTypes reads Variant, Dynamic and JSON columns, each followed by a column the client
// can only read if the one before it was framed whole, and checks every row's values.
func variantTypes(ctx context.Context, conn driver.Conn) (int, error) {
	rows, err := conn.Query(ctx, "SELECT CAST(multiIf(number % 3 = 0, NULL, number % 3 = 1, toString(number), number),"+
		" 'Variant(String, UInt64)') AS v, CAST(if(number % 2 = 0, toString(number), number), 'Dynamic') AS d,"+
		" ('{\"a\":' || toString(number) || '}')::JSON AS j, toDateTime(number, 'UTC') AS t FROM numbers(3000) ORDER BY number")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	seen := 0
	for ; rows.Next(); seen++ {
		var (
			variant, dynamic clickhouse.Dynamic
			object           clickhouse.JSON
			at               time.Time
		)
		if err := rows.Scan(&variant, &dynamic, &object, &at); err != nil {
			return seen, err
		}
		index := uint64(seen)
		var want any = index
		if index%3 == 1 {
			want = fmt.Sprint(index)
		}
		a, _ := object.ValueAtPath("a")
		if inner, ok := a.(clickhouse.Dynamic); ok {
			a = inner.Any()
		}
		if index%3 == 0 && !variant.Nil() || index%3 != 0 && variant.Any() != want {
			return seen, fmt.Errorf("row %d: variant %v", index, variant.Any())
		}
		if want = index; index%2 == 0 {
			want = fmt.Sprint(index)
		}
		if dynamic.Any() != want || fmt.Sprint(a) != fmt.Sprint(index) || at.Unix() != int64(index) {
			return seen, fmt.Errorf("row %d: dynamic %#v, json %#v, time %v", index, dynamic.Any(), a, at)
		}
	}
	return seen, rows.Err()
}

// variantInsert writes Variant, Dynamic and JSON values through a batch (clickhouse-go sends the
// flattened serialization) and reads them back.
func variantInsert(ctx context.Context, conn driver.Conn, table string) (int, error) {
	if err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
		return 0, err
	}
	err := conn.Exec(ctx, "CREATE TABLE "+table+
		" (id UInt64, v Variant(String, UInt64), d Dynamic, j JSON, at DateTime('UTC')) ENGINE = MergeTree ORDER BY id")
	if err != nil {
		return 0, err
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table)
	if err != nil {
		return 0, err
	}
	for index := 0; index < 500; index++ {
		object := clickhouse.NewJSON()
		object.SetValueAtPath("a", int64(index))
		var value any = uint64(index)
		if index%2 == 0 {
			value = fmt.Sprint(index)
		}
		err = batch.Append(uint64(index), value, clickhouse.NewDynamic(value), object, time.Unix(int64(index), 0))
		if err != nil {
			return 0, err
		}
	}
	if err = batch.Send(); err != nil {
		return 0, err
	}
	var matching uint64
	err = conn.QueryRow(ctx, "SELECT countIf(toString(v) = toString(id) AND toString(d) = toString(id)"+
		" AND j.a::Int64 = id AND toUInt64(at) = id) FROM "+table).Scan(&matching)
	return int(matching), err
}

func run(ctx context.Context, conn driver.Conn, database string, writes bool) []outcome {
	var outcomes []outcome
	step := func(name string, rows int, err error) {
		item := outcome{Step: name, Rows: rows}
		if err != nil {
			item.Error = err.Error()
		}
		outcomes = append(outcomes, item)
	}
	step("ping", 0, conn.Ping(ctx))
	rows, err := count(ctx, conn, "SELECT number, toString(number) AS s, toDateTime64(number, 3, 'UTC') AS t FROM numbers(100000)")
	step("select", rows, err)
	var answer uint64
	withParameters := clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"n": "41"}))
	err = conn.QueryRow(withParameters, "SELECT toUInt64({n:UInt32} + 1)").Scan(&answer)
	if err == nil && answer != 42 {
		err = fmt.Errorf("parameter: got %d, want 42", answer)
	}
	step("parameters", int(answer), err)
	var outputFormat string // a setting the analyst may change too
	withSettings := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"date_time_output_format": "iso"}))
	err = conn.QueryRow(withSettings, "SELECT getSetting('date_time_output_format')::String").Scan(&outputFormat)
	if err == nil && outputFormat != "iso" {
		err = fmt.Errorf("setting: got %s, want iso", outputFormat)
	}
	step("settings", 0, err)
	_, err = count(ctx, conn, "SELECT CAST(if(number = 5000, 'midway', '1') AS UInt8) FROM numbers(10000)")
	if err == nil || !strings.Contains(err.Error(), "midway") {
		err = fmt.Errorf("an exception mid-stream was expected, got %v", err)
	} else {
		err = nil
	}
	step("exception", 0, err)
	rows, err = count(ctx, conn, "SELECT 1")
	step("after exception", rows, err)
	rows, err = variantTypes(ctx, conn)
	step("variant types", rows, err)
	table := database + ".native_check"
	if writes {
		err = conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+table+
			" (id UInt64, name String, at DateTime64(3, 'UTC'), price Decimal(18, 5)) ENGINE = MergeTree ORDER BY id")
		step("create", 0, err)
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table)
	if err == nil {
		for index := 0; index < 1000; index++ {
			if err = batch.Append(uint64(index), fmt.Sprintf("row %d", index), time.UnixMilli(int64(index)), fmt.Sprintf("%d.12345", index)); err != nil {
				break
			}
		}
		if err == nil {
			err = batch.Send()
		}
	}
	if writes {
		step("insert", 1000, err)
		rows, err = count(ctx, conn, "SELECT * FROM "+table)
		step("read back", rows, err)
		rows, err = variantInsert(ctx, conn, database+".variant_check")
		step("variant insert", rows, err)
	} else {
		if err == nil || !(strings.Contains(err.Error(), "164") || strings.Contains(err.Error(), "READONLY") || strings.Contains(err.Error(), "readonly")) {
			err = fmt.Errorf("the insert must be refused READONLY, got %v", err)
		} else {
			err = nil
		}
		step("insert refused", 0, err)
	}
	return outcomes
}

func main() {
	method, err := compression(os.Getenv("NATIVE_COMPRESSION"))
	if err != nil || os.Getenv("NATIVE_ADDR") == "" {
		fmt.Fprintln(os.Stderr, "set NATIVE_ADDR (and NATIVE_USER, NATIVE_PASSWORD, NATIVE_DATABASE):", err)
		os.Exit(2)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:     []string{os.Getenv("NATIVE_ADDR")},
		Protocol: clickhouse.Native,
		Auth: clickhouse.Auth{
			Database: os.Getenv("NATIVE_DATABASE"),
			Username: os.Getenv("NATIVE_USER"),
			Password: os.Getenv("NATIVE_PASSWORD"),
		},
		Compression: method,
		DialTimeout: 10 * time.Second,
		ReadTimeout: 60 * time.Second,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer conn.Close()
	// clickhouse-go sends the deadline as max_execution_time: within the analyst's limit (60 s by default).
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	failed := false
	encoder := json.NewEncoder(os.Stdout)
	for _, item := range run(ctx, conn, os.Getenv("NATIVE_DATABASE"), os.Getenv("NATIVE_WRITES") == "1") {
		failed = failed || item.Error != ""
		if err := encoder.Encode(item); err != nil {
			fmt.Fprintln(os.Stderr, errors.Unwrap(err))
			os.Exit(2)
		}
	}
	if failed {
		os.Exit(1)
	}
}
