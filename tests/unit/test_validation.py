"""tracker.validation: the API's query strings and control token, in CPython."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.validation import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    MAX_SYMBOL_LENGTH,
    MAX_TIMESTAMP_MS,
    CompareQuery,
    ExportQuery,
    RowQuery,
    ValidationError,
    check_bearer,
    parse_compare_query,
    parse_export_query,
    parse_integer,
    parse_no_params,
    parse_params,
    parse_row_query,
)


def refused(fn, *args, status: int = 400) -> str:
    with pytest.raises(ValidationError) as info:
        fn(*args)
    assert info.value.status == status
    return info.value.message


# -- rows (/api/minutes, /api/snapshots) -------------------------------------------


def test_row_query_defaults():
    assert parse_row_query("") == RowQuery(None, DEFAULT_LIMIT, 0, 0, MAX_TIMESTAMP_MS)


def test_row_query_all_parameters():
    q = parse_row_query("symbol=ETH&limit=10&offset=20&from=1700000000000&to=1700000060000")
    assert q == RowQuery("ETH", 10, 20, 1_700_000_000_000, 1_700_000_060_000)


def test_row_query_decodes_percent_escapes():
    assert parse_row_query("symbol=ETH%2FUSDC").symbol == "ETH/USDC"


def test_limit_bounds_are_inclusive():
    assert parse_row_query("limit=1").limit == 1
    assert parse_row_query(f"limit={MAX_LIMIT}").limit == MAX_LIMIT
    assert parse_row_query(f"offset={MAX_OFFSET}").offset == MAX_OFFSET
    assert parse_row_query("offset=0").offset == 0


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("limit=abc", "limit must be an integer from 1 to 1000, got 'abc'"),
        ("limit=-5", "limit must not be negative"),
        ("limit=0", "limit must be at least 1"),
        (f"limit={MAX_LIMIT + 1}", "limit must be at most 1000"),
        ("limit=", "limit is empty"),
        ("limit=1.5", "limit must be an integer"),
        ("limit=1e3", "limit must be an integer"),
        ("limit=+5", "limit must be an integer"),
        ("limit=%205", "limit must be an integer"),
        ("limit=1_000", "limit must be an integer"),
        ("limit=%D9%A3", "limit must be an integer"),  # Arabic-Indic three: int() would take it
        ("limit=" + "9" * 5000, "limit must be an integer"),  # never handed to int()
        ("offset=-1", "offset must not be negative"),
        ("offset=x", "offset must be an integer"),
        (f"offset={MAX_OFFSET + 1}", "offset must be at most"),
        ("from=yesterday", "from must be a timestamp in milliseconds"),
        ("from=2024-01-01", "from must be a timestamp in milliseconds"),
        ("to=1.5", "to must be a timestamp in milliseconds"),
        ("from=-1", "from must not be negative"),
        ("to=", "to is empty"),
        (f"to={MAX_TIMESTAMP_MS + 1}", "to must be at most"),
        ("symbol=", "symbol is empty"),
        ("symbol=" + "A" * (MAX_SYMBOL_LENGTH + 1), "symbol is longer than 64"),
        ("symbol=ETH%00", "symbol contains control characters"),
        ("symbl=ETH", "unknown query parameter 'symbl'"),
        ("limit=1&limit=2", "'limit' is given more than once"),
        ("&".join(f"p{i}=1" for i in range(40)), "too many query parameters"),
    ],
)
def test_row_query_refusals(query, words):
    assert words in refused(parse_row_query, query)


def test_from_equal_to_is_a_single_instant():
    q = parse_row_query("from=5&to=5")
    assert (q.from_ms, q.to_ms) == (5, 5)


def test_from_after_to_is_an_empty_range_not_an_error():
    """Both bounds valid on their own: the document cannot forbid the pair, so it is
    answered (with no rows, the range being empty) rather than refused."""
    q = parse_row_query("from=2000&to=1000")
    assert (q.from_ms, q.to_ms) == (2000, 1000)
    e = parse_export_query("from=10&to=5")
    assert (e.from_ms, e.to_ms) == (10, 5)


def test_unknown_parameter_message_lists_accepted_ones():
    assert "accepted: symbol, limit, offset, from, to" in refused(parse_row_query, "page=2")


def test_long_values_are_cut_short_in_messages():
    message = refused(parse_row_query, "limit=" + "x" * 500)
    assert len(message) < 150


@given(st.integers(min_value=1, max_value=MAX_LIMIT))
def test_every_valid_limit_round_trips(n):
    assert parse_row_query(f"limit={n}").limit == n


@given(st.text(max_size=30))
def test_limit_never_raises_anything_but_validation_error(text):
    try:
        value = parse_integer("limit", text, 1, MAX_LIMIT)
    except ValidationError:
        return
    assert 1 <= value <= MAX_LIMIT and text == str(value)


@given(st.text(max_size=60))
def test_any_query_string_parses_or_is_refused(query):
    for parse in (parse_row_query, parse_export_query):
        try:
            parse(query)
        except ValidationError as exc:
            assert exc.status == 400 and exc.message


# -- export --------------------------------------------------------------------------


def test_export_defaults_to_csv_everything():
    assert parse_export_query("") == ExportQuery(None, 0, MAX_TIMESTAMP_MS, "csv")


def test_export_format_is_case_insensitive():
    assert parse_export_query("format=JSON").format == "json"


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("format=xml", "format must be one of csv, json, got 'xml'"),
        ("format=", "format must be one of csv, json"),
        ("limit=10", "unknown query parameter 'limit'"),
        ("from=abc", "from must be a timestamp"),
    ],
)
def test_export_refusals(query, words):
    assert words in refused(parse_export_query, query)


# -- /api/compare ---------------------------------------------------------------------------


def test_compare_defaults_to_minutes_newest_first():
    assert parse_compare_query("asset=BTC") == CompareQuery("BTC", "minutes", DEFAULT_LIMIT, 0, 0, MAX_TIMESTAMP_MS)
    q = parse_compare_query("asset=1000PEPE&resolution=WINDOWS&limit=5&offset=10&from=1&to=2")
    assert q == CompareQuery("1000PEPE", "windows", 5, 10, 1, 2)
    assert parse_compare_query("asset=ETH%2FUSDC&resolution=hours").asset == "ETH/USDC"


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("", "asset is required: one of GET /api/assets"),
        ("resolution=minutes", "asset is required"),
        ("asset=", "asset must be 1-64 characters"),
        ("asset=" + "A" * (MAX_SYMBOL_LENGTH + 1), "asset must be 1-64 characters"),
        ("asset=B%00TC", "without control characters"),
        ("asset=BTC&resolution=days", "resolution must be one of windows, minutes, hours, got 'days'"),
        ("asset=BTC&resolution=", "resolution must be one of windows, minutes, hours"),
        ("asset=BTC&limit=0", "limit must be at least 1"),
        ("asset=BTC&offset=-1", "offset must not be negative"),
        ("asset=BTC&to=x", "to must be a timestamp"),
        ("asset=BTC&symbol=BTC", "unknown query parameter 'symbol'"),
        ("asset=BTC&exchange=paradex", "unknown query parameter 'exchange'"),
        ("asset=BTC&asset=ETH", "given more than once"),
    ],
)
def test_compare_refusals(query, words):
    assert words in refused(parse_compare_query, query)


@given(st.text(min_size=1, max_size=MAX_SYMBOL_LENGTH))
def test_the_documented_asset_pattern_is_what_is_accepted(raw):
    """The OpenAPI document states the asset's rule as the symbol's pattern: they agree."""
    import re
    from urllib.parse import quote

    from tracker.validation import SYMBOL_PATTERN

    documented = re.fullmatch(SYMBOL_PATTERN, raw) is not None
    try:
        accepted = parse_compare_query("asset=" + quote(raw, safe="")).asset == raw
    except ValidationError:
        accepted = False
    assert accepted == documented, repr(raw)


# -- routes without parameters -----------------------------------------------------------


def test_no_params_accepts_nothing():
    parse_no_params("")
    assert "unknown query parameter 'x' (accepted: none)" in refused(parse_no_params, "x=1")


def test_parse_params_keeps_blank_values():
    assert parse_params("a=&b=2", ("a", "b")) == {"a": "", "b": "2"}


# -- control token -------------------------------------------------------------------


def test_bearer_accepted():
    check_bearer("Bearer test-token", "test-token")
    check_bearer("bearer   test-token  ", "test-token")


def test_no_admin_token_configured_is_403_and_says_how_to_set_it():
    message = refused(check_bearer, "Bearer anything", None, status=403)
    assert "wrangler secret put ADMIN_TOKEN" in message
    refused(check_bearer, None, "", status=403)


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (None, "missing Authorization header"),
        ("", "missing Authorization header"),
        ("Basic dGVzdA==", "Bearer scheme"),
        ("test-token", "Bearer scheme"),
        ("Bearer", "wrong bearer token"),
        ("Bearer wrong", "wrong bearer token"),
        ("Bearer test-token-and-more", "wrong bearer token"),
        ("Bearer tést", "wrong bearer token"),
    ],
)
def test_bad_bearer_is_401_with_a_challenge(header, words):
    with pytest.raises(ValidationError) as info:
        check_bearer(header, "test-token")
    assert info.value.status == 401
    assert words in info.value.message
    assert info.value.headers["www-authenticate"].startswith("Bearer")


@given(st.text(min_size=1, max_size=MAX_SYMBOL_LENGTH))
def test_the_documented_symbol_pattern_is_what_is_accepted(raw):
    """The OpenAPI document's `pattern` for `symbol` and parse_symbol agree on every
    string: what the document calls valid is never refused as malformed (issue 19, item 9)."""
    import re

    from tracker.validation import SYMBOL_PATTERN, parse_symbol

    documented = re.fullmatch(SYMBOL_PATTERN, raw) is not None
    try:
        parse_symbol(raw)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == documented, repr(raw)


# -- read token (READ_TOKEN, issue 19 item 6) -------------------------------------------


def test_reads_are_public_without_a_read_token():
    from tracker.validation import check_read

    for token in (None, "", "anything"):
        check_read(token, None, "admin")
        check_read(token, "", None)


def test_the_read_token_or_the_admin_token_opens_reads():
    from tracker.validation import bearer_token, check_read

    check_read(bearer_token("Bearer read-me"), "read-me", "admin-me")
    check_read(bearer_token("bearer   admin-me "), "read-me", "admin-me")  # who may start and stop may read
    check_read("read-me", "read-me", None)


@pytest.mark.parametrize(
    ("token", "admin", "words"),
    [
        (None, "admin-me", "this deployment's data is private: send 'Authorization: Bearer <READ_TOKEN>'"),
        ("", "admin-me", "wrong read token"),
        ("read-m", "admin-me", "wrong read token"),
        ("read-me ", "admin-me", "wrong read token"),
        ("admin-me", None, "wrong read token"),  # no ADMIN_TOKEN set: only READ_TOKEN opens
        ("READ-ME", "admin-me", "wrong read token"),
    ],
)
def test_a_missing_or_wrong_read_token_is_401_with_a_challenge(token, admin, words):
    from tracker.validation import check_read

    with pytest.raises(ValidationError) as refused_:
        check_read(token, "read-me", admin)
    assert refused_.value.status == 401 and words in refused_.value.message
    assert refused_.value.headers["www-authenticate"].startswith("Bearer")


def test_another_scheme_is_refused_with_401():
    from tracker.validation import bearer_token

    assert bearer_token(None) is None and bearer_token("  ") is None
    with pytest.raises(ValidationError) as refused_:
        bearer_token("Basic cmVhZC1tZQ==")
    assert refused_.value.status == 401 and "Bearer scheme" in refused_.value.message


def test_the_token_a_browser_sends_as_a_websocket_subprotocol():
    import base64

    from tracker.validation import LIVE_PROTOCOL, offers_live_protocol, token_from_protocols

    def encoded(token: str) -> str:
        return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")

    for token in ("read-me", "é/+=?&ü token", "x" * 200):
        assert token_from_protocols(f"{LIVE_PROTOCOL}, bearer.{encoded(token)}") == token
    assert token_from_protocols(None) is None and token_from_protocols(LIVE_PROTOCOL) is None
    assert token_from_protocols("bearer.%%%") == "" and token_from_protocols("bearer.gA") == ""  # not base64url / not UTF-8
    assert offers_live_protocol("chat, lighter-tracker") and not offers_live_protocol("lighter-tracker-x, bearer.eA")
    assert not offers_live_protocol(None)
