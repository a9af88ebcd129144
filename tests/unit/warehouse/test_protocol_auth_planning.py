from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.warehouse.credentials import Credentials
from warehouse_server.http.codecs import form_fields
from warehouse_server.protocol import QueryError, Summary, content_type_for, engine_error, error_text, http_status_for
from warehouse_server.query.engine import engine_text
from warehouse_server.query.planning import ExternalTable, bind_current_user, bind_show_grants, full_query, plan
from warehouse_server.security.auth import (
    READ_ONLY,
    READ_WRITE,
    User,
    authenticate,
    presented_credentials,
    users_from,
    write_engine_users,
)

SERVICE = User("tickwave", "s3cret", READ_WRITE)
ANALYST = User("analyst", "look", READ_ONLY)
USERS = {user.name: user for user in (SERVICE, ANALYST)}


@pytest.mark.parametrize(
    ("code", "status"),
    [(516, 403), (194, 401), (62, 400), (27, 400), (60, 404), (115, 404), (229, 413), (48, 501), (164, 500)],
)
def test_http_status_when_code_is_known_then_matches_clickhouse(code: int, status: int) -> None:
    assert http_status_for(code) == status


def test_error_text_when_formatting_then_has_clickhouse_layout() -> None:
    assert (
        error_text(62, "Syntax error: x", "26.9")
        == "Code: 62. DB::Exception: Syntax error: x (SYNTAX_ERROR) (version 26.9)\n"
    )
    assert error_text(60, "Unknown table. (UNKNOWN_TABLE) (version 26.9.2.1)", "26.9") == (
        "Code: 60. DB::Exception: Unknown table. (UNKNOWN_TABLE) (version 26.9.2.1)\n"
    )


def test_engine_error_when_chdb_nests_codes_then_inner_code_and_text_are_kept() -> None:
    error = engine_error("Code: 115. DB::Exception: Code: 115. DB::Exception: Unknown setting 'x'. (UNKNOWN_SETTING)")

    assert (error.code, error.message) == (115, "Unknown setting 'x'. (UNKNOWN_SETTING)")
    assert engine_error("something odd").code == 1002


def test_summary_header_when_rendered_then_numbers_are_strings_as_clickhouse_sends() -> None:
    header = json.loads(Summary(read_rows=5, written_rows=2, elapsed_ns=7).header())

    assert header["read_rows"] == "5" and header["written_rows"] == "2" and header["total_rows_to_read"] == "5"


@pytest.mark.parametrize(
    ("output_format", "content_type"),
    [
        ("TabSeparated", "text/tab-separated-values"),
        ("Native", "application/octet-stream"),
        ("JSON", "application/json"),
        ("ArrowStream", "application/octet-stream"),
        ("CSVWithNames", "text/csv"),
        ("Pretty", "text/plain"),
    ],
)
def test_content_type_when_format_given_then_matches(output_format: str, content_type: str) -> None:
    assert content_type_for(output_format).startswith(content_type)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("headers", "params", "presented"),
    [
        ({"x-clickhouse-user": "tickwave", "x-clickhouse-key": "s3cret"}, {}, ("tickwave", "s3cret")),
        ({"authorization": basic("analyst", "a:b")}, {}, ("analyst", "a:b")),
        ({}, {"user": "tickwave", "password": "s3cret"}, ("tickwave", "s3cret")),
        ({}, {}, ("default", "")),
    ],
)
def test_presented_credentials_when_one_scheme_is_used_then_it_is_read(
    headers: dict[str, str], params: dict[str, str], presented: tuple[str, str]
) -> None:
    assert presented_credentials(headers, params) == presented


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({"x-clickhouse-user": "a", "authorization": basic("a", "b")}, {}),
        ({"x-clickhouse-user": "a"}, {"user": "a"}),
        ({"authorization": basic("a", "b")}, {"password": "x"}),
        ({"authorization": "Bearer token"}, {}),
        ({"authorization": "Basic %%%"}, {}),
    ],
)
def test_presented_credentials_when_schemes_mix_or_are_malformed_then_516(
    headers: dict[str, str], params: dict[str, str]
) -> None:
    with pytest.raises(QueryError) as raised:
        presented_credentials(headers, params)

    assert raised.value.code == 516


@pytest.mark.parametrize(
    ("name", "password"), [("tickwave", "wrong"), ("nobody", "s3cret"), ("analyst", ""), ("default", "")]
)
def test_authenticate_when_credentials_are_wrong_then_516_without_revealing_which(name: str, password: str) -> None:
    with pytest.raises(QueryError) as raised:
        authenticate(USERS, name, password)

    assert raised.value.code == 516
    assert "password is incorrect, or there is no user with such name" in raised.value.message


def test_users_when_no_password_is_allowed_then_default_is_the_service_user() -> None:
    credentials = Credentials("tickwave", SecretStr(""), "analyst", SecretStr(""))

    users = users_from(credentials, allow_no_password=True)

    assert authenticate(users, "default", "").readonly == READ_WRITE
    assert "default" not in users_from(credentials, allow_no_password=False)
    with_password = Credentials("tickwave", SecretStr("set"), "analyst", SecretStr(""))
    assert "default" not in users_from(with_password, allow_no_password=True)
    assert "s3cret" not in repr(SERVICE)


def test_full_query_when_parameter_and_body_given_then_joined_by_newline() -> None:
    assert full_query("INSERT INTO t FORMAT CSV", b"1,2\n") == b"INSERT INTO t FORMAT CSV\n1,2\n"
    assert full_query("", b"SELECT 1") == b"SELECT 1"


def test_plan_when_parameters_mix_settings_params_and_transport_then_each_lands_in_its_place() -> None:
    params = {
        "query": "SELECT {x:UInt8}",
        "param_x": "1",
        "database": "db",
        "max_threads": "2",
        "session_id": "s",
        "send_progress_in_http_headers": "1",
        "query_id": "q",
        "client_protocol_version": "54405",
        "user": "tickwave",
    }

    result = plan(method="POST", params=params, headers={}, text=full_query(params["query"], b""), user=SERVICE)

    assert result.engine_settings == {"max_threads": "2"}
    assert result.http_settings == {"send_progress_in_http_headers": "1"}
    assert result.query_params == {"x": "1"}
    assert (result.database, result.query_id, result.readonly) == ("db", "q", READ_WRITE)
    assert result.session is not None and result.session.session_id == "s"
    assert result.output_format == "TabSeparated"


def test_plan_when_headers_name_database_and_format_then_they_win() -> None:
    headers = {"x-clickhouse-database": "from_header", "x-clickhouse-format": "JSONEachRow"}

    result = plan(method="POST", params={"database": "p"}, headers=headers, text=b"SELECT 1", user=SERVICE)

    assert (result.database, result.output_format) == ("from_header", "JSONEachRow")


@pytest.mark.parametrize(
    ("user", "method", "readonly_param", "expected"),
    [
        (SERVICE, "POST", None, 0),
        (SERVICE, "GET", None, 2),
        (SERVICE, "POST", "1", 1),
        (ANALYST, "POST", None, 1),
        (ANALYST, "POST", "1", 1),
    ],
)
def test_plan_when_deriving_readonly_then_follows_clickhouse(
    user: User, method: str, readonly_param: str | None, expected: int
) -> None:
    params = {} if readonly_param is None else {"readonly": readonly_param}

    assert plan(method=method, params=params, headers={}, text=b"SELECT 1", user=user).readonly == expected


@pytest.mark.parametrize(
    ("user", "method", "params"),
    [
        (ANALYST, "POST", {"readonly": "0"}),
        (SERVICE, "GET", {"readonly": "0"}),
        (ANALYST, "POST", {"enable_http_compression": "0"}),
    ],
)
def test_plan_when_read_only_request_changes_protected_settings_then_164(
    user: User, method: str, params: dict[str, str]
) -> None:
    with pytest.raises(QueryError) as raised:
        plan(method=method, params=params, headers={}, text=b"SELECT 1", user=user)

    assert raised.value.code == 164


@pytest.mark.parametrize(
    ("sql", "keyword", "insert_format"),
    [
        (b"WITH 1 AS y INSERT INTO t SELECT y", "INSERT", None),
        (b"WITH x AS (SELECT 1) INSERT INTO t FORMAT CSV\n1\n", "INSERT", "CSV"),
        (b"WITH x AS (SELECT 'INSERT') SELECT * FROM x", "WITH", None),
        (b"WITH 1 AS y SELECT y", "WITH", None),
    ],
)
def test_plan_when_with_leads_an_insert_then_it_is_an_insert(
    sql: bytes, keyword: str, insert_format: str | None
) -> None:
    result = plan(method="POST", params={}, headers={}, text=sql, user=SERVICE)

    assert (result.keyword, result.insert_format) == (keyword, insert_format)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT currentUser()", "SELECT ('analyst' AS `currentUser()`)"),
        ("SELECT user ( ) = CURRENT_USER()", "SELECT ('analyst' AS `user()`) = ('analyst' AS `CURRENT_USER()`)"),
        ("SELECT 'currentUser()', `user()` -- user()", "SELECT 'currentUser()', `user()` -- user()"),
        ("SELECT t.user() FROM t", "SELECT t.user() FROM t"),
        ("SELECT currentUser(1)", "SELECT currentUser(1)"),
    ],
)
def test_bind_current_user_when_called_then_answers_the_http_user(sql: str, expected: str) -> None:
    assert bind_current_user(sql, "analyst") == expected


def test_plan_when_query_is_not_utf8_then_its_bytes_survive() -> None:
    result = plan(method="POST", params={}, headers={}, text=b"SELECT '\xff\xfe'", user=SERVICE)

    assert engine_text(result.sql) == b"SELECT '\xff\xfe'"


FORM = (
    b'--b\r\nContent-Disposition: form-data; name="query"\r\n\r\nSELECT {x:UInt8}\r\n'
    b'--b\r\nContent-Disposition: form-data; name="param_x"\r\n\r\n7\r\n--b--\r\n'
)


def test_form_fields_when_multipart_then_fields_are_returned() -> None:
    assert form_fields(FORM, "multipart/form-data; boundary=b") == (
        {"query": "SELECT {x:UInt8}", "param_x": "7"},
        {},
    )


def test_form_fields_when_a_file_is_attached_then_it_is_external_data() -> None:
    body = (
        FORM[: -len(b"--b--\r\n")]
        + b'--b\r\nContent-Disposition: form-data; name="t"; filename="t.tsv"\r\n\r\n1\t\xff\r\n--b--\r\n'
    )

    fields, files = form_fields(body, "multipart/form-data; boundary=b")

    assert (fields["query"], files) == ("SELECT {x:UInt8}", {"t": b"1\t\xff"})


@pytest.mark.parametrize(
    ("params", "structure", "input_format"),
    [
        ({"t_structure": "a String, b UInt8", "t_format": "CSV"}, "a String, b UInt8", "CSV"),
        ({"t_types": "String,UInt8"}, "_1 String, _2 UInt8", "TabSeparated"),
    ],
)
def test_plan_when_a_form_holds_a_file_then_it_is_an_external_table(
    params: dict[str, str], structure: str, input_format: str
) -> None:
    result = plan(method="POST", params=params, headers={}, text=b"SELECT * FROM t", user=SERVICE, files={"t": b"x"})

    assert result.external_tables == (ExternalTable("t", structure, input_format, b"x"),)
    assert result.engine_settings == {}  # the table's parameters are not settings


def test_plan_when_an_external_table_has_no_structure_then_36() -> None:
    with pytest.raises(QueryError) as raised:
        plan(method="POST", params={}, headers={}, text=b"SELECT 1", user=SERVICE, files={"t": b"x"})

    assert raised.value.code == 36


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SHOW GRANTS", "SHOW GRANTS FOR `tickwave`"),
        ("show grants FORMAT TSV", "show grants FOR `tickwave` FORMAT TSV"),
        ("-- mine\n  SHOW /* all */ GRANTS;", "-- mine\n  SHOW /* all */ GRANTS FOR `tickwave`;"),
        ("SHOW GRANTS FOR analyst", "SHOW GRANTS FOR analyst"),
        ("SELECT 'SHOW GRANTS'", "SELECT 'SHOW GRANTS'"),
        ("SHOW GRANTSX", "SHOW GRANTSX"),
    ],
)
def test_bind_show_grants_when_no_one_is_named_then_the_http_user_is(sql: str, expected: str) -> None:
    assert bind_show_grants(sql, "tickwave") == expected


def test_engine_users_when_written_then_only_read_write_users_by_hash_and_private(tmp_path: Path) -> None:
    path = tmp_path / "engine-users.xml"
    path.write_text("an earlier file, readable by all")
    path.chmod(0o644)

    write_engine_users(path, {**USERS, "default": User("default", "", READ_WRITE)})

    text = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"<tickwave><password_sha256_hex>{hashlib.sha256(b's3cret').hexdigest()}<" in text
    assert "s3cret" not in text and "analyst" not in text and "look" not in text
    assert text.count("<default><password>") == 1 and "<ip>127.0.0.1</ip>" in text
