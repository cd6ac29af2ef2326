"""The exception tree: AADSTS table, error-body mapping, messages, to_dict, and the CLI's exit codes for it."""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Type

import pytest
from hypothesis import given, settings, strategies as st

from oauth_core.cli.exit_codes import exit_code_for
from oauth_core.core import errors
from oauth_core.core.errors import (
    AADSTS,
    AccessDenied,
    AuthorizationDeclined,
    AuthorizationPending,
    BadVerificationCode,
    ConfigError,
    ExpiredToken,
    InsecureAuthorityError,
    InteractionRequired,
    InteractionTimeout,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidResource,
    InvalidScope,
    InvalidTenant,
    LoopDetected,
    NonceMismatch,
    OAuthCoreError,
    OAuthError,
    RedirectError,
    ResponseFormatError,
    SecurityCheckError,
    ServerError,
    SignatureVerificationError,
    SlowDown,
    StateMismatch,
    TokenDecodeError,
    TransientError,
    TransportError,
    UnauthorizedClient,
    oauth_error_from_body,
)

TRACE = "cccccccc-0000-0000-0000-f45a9efcba00"
CORRELATION = "dddddddd-0000-0000-0000-15949d0f4b3a"
TAIL_SPACES = f" Trace ID: {TRACE} Correlation ID: {CORRELATION} Timestamp: 2026-11-25 09:49:17Z"
TAIL_CRLF = f"\r\nTrace ID: {TRACE}\r\nCorrelation ID: {CORRELATION}\r\nTimestamp: 2026-11-25 09:49:17Z"

OAUTH_CLASSES = [
    OAuthError,
    InvalidGrant,
    InteractionRequired,
    InvalidClient,
    UnauthorizedClient,
    InvalidScope,
    InvalidRequest,
    InvalidTenant,
    InvalidResource,
    AccessDenied,
    LoopDetected,
    ServerError,
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    AuthorizationDeclined,
    BadVerificationCode,
]


def _entra_body(code: int, error: str = "invalid_grant", message: str = "Something failed.") -> Dict[str, Any]:
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {message}{TAIL_SPACES}",
        "error_codes": [code],
        "timestamp": "2026-11-25 09:49:17Z",
        "trace_id": TRACE,
        "correlation_id": CORRELATION,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }


# --- AADSTS table ----------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(AADSTS))
def test_every_aadsts_code_maps_to_its_class(code: int) -> None:
    cls, meaning, _hint = AADSTS[code]
    # an `error` value that would map elsewhere: the AADSTS code must win
    exc = oauth_error_from_body(_entra_body(code, error="server_error"), status=400)
    assert type(exc) is cls
    assert exc.error_codes == (code,)
    assert exc.error == "server_error"
    assert exc.status == 400
    assert isinstance(meaning, str) and meaning


@pytest.mark.parametrize("code", sorted(AADSTS))
def test_every_aadsts_code_maps_from_its_description_alone(code: int) -> None:
    body = _entra_body(code, error="whatever")
    del body["error_codes"]
    exc = oauth_error_from_body(body)
    assert type(exc) is AADSTS[code][0]
    assert exc.error_codes == (code,)


def test_aadsts_table_classes_are_oauth_errors() -> None:
    for code, (cls, _meaning, _hint) in AADSTS.items():
        assert issubclass(cls, OAuthError), code
        assert 1000 <= code < 10**9


@pytest.mark.parametrize("code", sorted(AADSTS))
def test_hint_comes_from_the_table_or_the_class(code: int) -> None:
    cls, _meaning, hint = AADSTS[code]
    exc = oauth_error_from_body(_entra_body(code))
    if hint is not None:
        assert exc.hint == hint
    elif cls.hint is not None:
        # a code without its own advice keeps the class's advice rather than losing it
        assert exc.hint == cls.hint
    else:
        assert exc.hint is None or str(code) in exc.hint


def test_specific_hints() -> None:
    assert oauth_error_from_body(_entra_body(50076)).hint == AADSTS[50076][2]
    assert oauth_error_from_body(_entra_body(7000215)).hint == "Use the secret's value, not its id."
    assert oauth_error_from_body({"error": "invalid_client"}).hint == InvalidClient.hint
    assert oauth_error_from_body({"error": "invalid_tenant"}).hint == InvalidTenant.hint


@pytest.mark.parametrize(
    ("error", "codes", "cls"),
    [
        # old bodies list a generic code first: the code that agrees with `error` wins
        ("invalid_grant", [70002, 54005], InvalidGrant),
        ("invalid_client", [70002, 54005], InvalidClient),
        # no agreeing code: the first known one
        ("something_else", [70002, 54005], InvalidClient),
        ("something_else", [54005, 70002], InvalidGrant),
        # unknown codes are skipped
        ("something_else", [99999999, 50126], InvalidGrant),
        ("invalid_scope", [99999999, 88888888], InvalidScope),
    ],
)
def test_several_codes(error: str, codes: List[int], cls: Type[OAuthError]) -> None:
    exc = oauth_error_from_body({"error": error, "error_codes": codes}, status=400)
    assert type(exc) is cls
    assert exc.error_codes == tuple(codes)


def test_mfa_reported_as_invalid_grant_is_interaction_required() -> None:
    exc = oauth_error_from_body(_entra_body(50076, error="invalid_grant"))
    assert type(exc) is InteractionRequired
    assert exc.error == "invalid_grant"


def test_loop_detected_at_any_error_value() -> None:
    for error in ("invalid_grant", "invalid_request", "authorization_pending", "temporarily_unavailable"):
        assert type(oauth_error_from_body(_entra_body(50196, error=error))) is LoopDetected


# --- fallbacks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "cls"),
    [
        ("invalid_grant", InvalidGrant),
        ("interaction_required", InteractionRequired),
        ("consent_required", InteractionRequired),
        ("login_required", InteractionRequired),
        ("invalid_client", InvalidClient),
        ("unauthorized_client", UnauthorizedClient),
        ("invalid_scope", InvalidScope),
        ("invalid_request", InvalidRequest),
        ("invalid_tenant", InvalidTenant),
        ("invalid_resource", InvalidResource),
        ("access_denied", AccessDenied),
        ("server_error", ServerError),
        ("temporarily_unavailable", ServerError),
        ("authorization_pending", AuthorizationPending),
        ("slow_down", SlowDown),
        ("expired_token", ExpiredToken),
        ("authorization_declined", AuthorizationDeclined),
        ("bad_verification_code", BadVerificationCode),
        ("unsupported_grant_type", OAuthError),
        ("something_new", OAuthError),
    ],
)
def test_unknown_codes_fall_back_to_the_error_value(error: str, cls: Type[OAuthError]) -> None:
    body = _entra_body(99999999, error=error)
    exc = oauth_error_from_body(body)
    assert type(exc) is cls
    assert exc.error == error
    assert exc.error_codes == (99999999,)
    exc2 = oauth_error_from_body({"error": error})
    assert type(exc2) is cls
    assert exc2.error_codes == ()


def test_missing_or_non_string_error() -> None:
    assert oauth_error_from_body({}).error == "unknown_error"
    assert type(oauth_error_from_body({})) is OAuthError
    exc = oauth_error_from_body({"error": 42, "error_description": "AADSTS50126: bad password"})
    assert exc.error == "unknown_error"
    assert type(exc) is InvalidGrant


def test_codes_parsed_from_description_when_error_codes_missing() -> None:
    exc = oauth_error_from_body({"error": "invalid_grant", "error_description": "AADSTS50126: Error validating."})
    assert exc.error_codes == (50126,)
    exc = oauth_error_from_body(
        {"error": "consent_required", "error_description": "AADSTS65004: declined.\r\nTrace ID: x"}
    )
    assert exc.error_codes == (65004,)
    assert type(exc) is AccessDenied


@pytest.mark.parametrize(
    "codes",
    [["50126"], [True], [50126.0], [None], [{"code": 50126}], "50126", 50126, [], {"0": 50126}],
)
def test_non_int_error_codes_ignored(codes: Any) -> None:
    body = {"error": "invalid_request", "error_codes": codes, "error_description": "AADSTS90002: Tenant not found."}
    exc = oauth_error_from_body(body)
    assert exc.error_codes == (90002,)
    assert type(exc) is InvalidTenant
    body.pop("error_description")
    exc = oauth_error_from_body(body)
    assert exc.error_codes == ()
    assert type(exc) is InvalidRequest


def test_non_int_entries_dropped_from_a_mixed_list() -> None:
    exc = oauth_error_from_body({"error": "invalid_grant", "error_codes": [True, "x", 50076, 1.5]})
    assert exc.error_codes == (50076,)
    assert type(exc) is InteractionRequired


def test_only_string_fields_are_taken() -> None:
    body = {
        "error": "invalid_grant",
        "error_description": ["AADSTS50126"],
        "suberror": {"x": 1},
        "trace_id": 12,
        "correlation_id": None,
        "timestamp": 3.5,
        "error_uri": ["https://attacker.example"],
        "claims": {"access_token": {}},
    }
    exc = oauth_error_from_body(body)
    assert exc.error_description == ""
    assert exc.suberror is None
    assert exc.trace_id is None
    assert exc.correlation_id is None
    assert exc.timestamp is None
    assert exc.error_uri is None
    assert exc.claims is None


def test_all_fields_carried() -> None:
    body = _entra_body(50076, message="MFA needed.")
    body["suberror"] = "basic_action"
    body["claims"] = '{"access_token":{"capolids":{"essential":true}}}'
    exc = oauth_error_from_body(body, status=400)
    assert exc.error == "invalid_grant"
    assert exc.error_description == body["error_description"]
    assert exc.error_codes == (50076,)
    assert exc.suberror == "basic_action"
    assert exc.trace_id == TRACE
    assert exc.correlation_id == CORRELATION
    assert exc.timestamp == "2026-11-25 09:49:17Z"
    assert exc.error_uri == "https://login.microsoftonline.com/error?code=50076"
    assert exc.claims == body["claims"]
    assert exc.status == 400


# --- messages --------------------------------------------------------------------------------


@pytest.mark.parametrize("tail", [TAIL_SPACES, TAIL_CRLF])
def test_str_drops_the_diagnostics_tail(tail: str) -> None:
    exc = oauth_error_from_body(
        {"error": "invalid_grant", "error_description": f"AADSTS50126: Error validating credentials.{tail}"}
    )
    assert str(exc) == "invalid_grant: AADSTS50126: Error validating credentials."
    assert TRACE not in str(exc)
    assert CORRELATION not in str(exc)
    assert "Trace ID" not in str(exc)
    assert "Timestamp" not in str(exc)


def test_str_without_description_is_the_error() -> None:
    assert str(oauth_error_from_body({"error": "invalid_grant"})) == "invalid_grant"


def test_long_description_is_capped_at_500() -> None:
    exc = oauth_error_from_body({"error": "invalid_grant", "error_description": "AADSTS50126: " + "x" * 5000})
    assert len(str(exc)) <= 500
    assert str(exc).startswith("invalid_grant: AADSTS50126: xxx")
    assert exc.error_description.endswith("x" * 100)  # the attribute keeps Entra's whole text


@settings(max_examples=200, deadline=None)
@given(
    code=st.integers(min_value=1000, max_value=999_999_999),
    message=st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=1500
    ).filter(lambda s: s.strip() and "Trace ID:" not in s),
    crlf=st.booleans(),
)
def test_str_never_has_the_tail_and_is_short(code: int, message: str, crlf: bool) -> None:
    description = f"AADSTS{code}: {message}{TAIL_CRLF if crlf else TAIL_SPACES}"
    exc = oauth_error_from_body({"error": "invalid_grant", "error_description": description})
    assert len(str(exc)) <= 500
    assert TRACE not in str(exc)
    assert CORRELATION not in str(exc)
    assert exc.error_codes == (code,)


def test_to_dict() -> None:
    body = _entra_body(65001, message="Consent needed.")
    body["suberror"] = "consent_required"
    exc = oauth_error_from_body(body, status=400)
    data = exc.to_dict()
    expected = {
        "error": "invalid_grant",
        "error_description": body["error_description"],
        "error_codes": [65001],
        "suberror": "consent_required",
        "correlation_id": CORRELATION,
        "trace_id": TRACE,
        "status": 400,
    }
    assert {k: data[k] for k in expected} == expected
    assert json.loads(json.dumps(data)) == data


def test_to_dict_of_a_redirect_error() -> None:
    data = oauth_error_from_body({"error": "access_denied"}).to_dict()
    assert data["error"] == "access_denied"
    assert data["error_codes"] == []
    assert data["status"] is None
    assert data["trace_id"] is None


def test_direct_construction() -> None:
    exc = InvalidGrant("invalid_grant", "AADSTS70008: expired.", error_codes=[70008], status=400)
    assert exc.error_codes == (70008,)
    assert str(exc) == "invalid_grant: AADSTS70008: expired."
    assert exc.hint == AADSTS[70008][2]


# --- tree and exit codes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (OAuthError, 1),
        (ConfigError, 2),
        (RedirectError, 2),
        (TokenDecodeError, 2),
        (TransportError, 3),
        (InteractionTimeout, 3),
        (TransientError, 3),
        (ResponseFormatError, 3),
        (SecurityCheckError, 4),
        (StateMismatch, 4),
        (NonceMismatch, 4),
        (InsecureAuthorityError, 4),
        (SignatureVerificationError, 4),
    ],
)
def test_exit_codes(cls: Type[OAuthCoreError], code: int) -> None:
    assert exit_code_for(cls) == code


@pytest.mark.parametrize("cls", OAUTH_CLASSES)
def test_every_oauth_error_exits_1(cls: Type[OAuthError]) -> None:
    exc = cls("some_error", "text")
    assert exit_code_for(exc) == 1
    assert isinstance(exc, OAuthError)


def test_instances_map_to_exit_codes() -> None:
    assert exit_code_for(StateMismatch("x")) == 4
    assert exit_code_for(ResponseFormatError("x", status=502, snippet="s")) == 3
    assert exit_code_for(TransientError("x", attempts=3, waits=[1.0, 2.0], status=503, retry_after=2.0)) == 3
    assert exit_code_for(oauth_error_from_body(_entra_body(50126))) == 1


def test_library_errors_carry_no_cli_concerns() -> None:
    """No exit codes on the exceptions, and no shell advice (commands, --flags) in their hints."""
    classes = [getattr(errors, name) for name in errors.__all__]
    classes = [cls for cls in classes if isinstance(cls, type)]
    assert not [cls.__name__ for cls in classes if hasattr(cls, "exit_code")]
    hints = [cls.hint or "" for cls in classes] + [entry[2] or "" for entry in AADSTS.values()]
    assert not [hint for hint in hints if "oauth-core" in hint or re.search(r"--[a-z]", hint)]


def test_every_exported_exception_derives_from_the_base() -> None:
    exported = [getattr(errors, name) for name in errors.__all__]
    classes = [obj for obj in exported if isinstance(obj, type) and issubclass(obj, BaseException)]
    assert len(classes) >= 29
    for cls in classes:
        assert issubclass(cls, OAuthCoreError), cls.__name__
    assert set(OAUTH_CLASSES) <= set(classes)


def test_tree_shape() -> None:
    assert issubclass(InsecureAuthorityError, ConfigError)
    assert issubclass(StateMismatch, SecurityCheckError)
    assert issubclass(NonceMismatch, SecurityCheckError)
    assert issubclass(SignatureVerificationError, TokenDecodeError)
    assert issubclass(TransientError, TransportError)
    assert issubclass(ConfigError, ValueError)
    assert not issubclass(OAuthError, ValueError)


def test_transient_and_format_error_attributes() -> None:
    exc = TransientError("gave up", attempts=3, waits=[0.5, 1.0], status=503, retry_after=1.0)
    assert (exc.attempts, exc.waits, exc.status, exc.retry_after) == (3, (0.5, 1.0), 503, 1.0)
    fmt = ResponseFormatError("HTML", status=502, snippet="<title>Bad gateway</title>")
    assert (fmt.status, fmt.snippet) == (502, "<title>Bad gateway</title>")
