"""JWT reading: unverified claims and lifetimes, strict shape checks, and RS256 signature checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Optional

import pytest
from hypothesis import given, settings, strategies as st

from oauth_core.core.claims import (
    MAX_TOKEN_LENGTH,
    decode_claims,
    inspect_token,
    unverified_claims,
    unverified_header,
    verify_signature,
)
from oauth_core.core.errors import SignatureVerificationError, TokenDecodeError

TOKENS = Path(__file__).resolve().parent.parent / "fixtures" / "tokens"
HAVE_CRYPTO = importlib.util.find_spec("cryptography") is not None
needs_crypto = pytest.mark.skipif(
    not HAVE_CRYPTO, reason="cryptography is not installed (the crypto extra): RS256 signature checks need it"
)

ISSUED_AT = 1795600000  # fixture tokens: iat = nbf = ISSUED_AT - 300
FIXTURE_KID = "J0jZvrdlukXQUCSKNgWi2fatGsI"
ROLLOVER_KID = "FgVVTjVNIRn3eblOtKkBiLUXyBQ"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def seg(value: Any) -> str:
    return b64url(json.dumps(value).encode("utf-8"))


def unsigned(claims: Any, header: Optional[Any] = None, signature: str = "c2ln") -> str:
    return f"{seg({'typ': 'JWT', 'alg': 'RS256'} if header is None else header)}.{seg(claims)}.{signature}"


def fixture_token(name: str) -> str:
    return (TOKENS / name).read_text(encoding="ascii")


def fixture_claims(name: str) -> Dict[str, Any]:
    return json.loads((TOKENS / "claims.json").read_text(encoding="utf-8"))[name]  # type: ignore[no-any-return]


# --- unverified reading ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["databricks-v1-user.jwt", "databricks-v1-app.jwt", "graph-v2-user.jwt", "id-token-v2.jwt", "expired-v1.jwt"],
)
def test_fixture_tokens_decode_to_their_recorded_claims(name: str) -> None:
    token = fixture_token(name)
    recorded = fixture_claims(name)
    assert unverified_claims(token) == recorded["claims"]
    assert unverified_header(token) == recorded["header"]
    assert decode_claims(token) == recorded["claims"]


def test_surrounding_whitespace_is_ignored() -> None:
    token = fixture_token("id-token-v2.jwt")
    assert unverified_claims(f"  {token}\n") == unverified_claims(token)


def test_unsigned_and_empty_signature_still_readable() -> None:
    # reading claims never needs the signature; verify_signature is what checks it
    assert unverified_claims(unsigned({"sub": "x"}, signature="")) == {"sub": "x"}


def test_inspect_fixture_id_token() -> None:
    info = inspect_token(fixture_token("id-token-v2.jwt"), now=ISSUED_AT)
    assert info.claims["nonce"] == "fixture-nonce-3f9c2a"
    assert info.header["kid"] == FIXTURE_KID
    assert info.issued_at == datetime.fromtimestamp(ISSUED_AT - 300, tz=timezone.utc)
    assert info.not_before == datetime.fromtimestamp(ISSUED_AT - 300, tz=timezone.utc)
    assert info.expires_at == datetime.fromtimestamp(1795603600, tz=timezone.utc)
    for moment in (info.issued_at, info.not_before, info.expires_at):
        assert moment is not None
        assert moment.tzinfo is not None
        assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert info.seconds_left == 3600
    assert info.expired is False


def test_inspect_lifetime_against_injected_now() -> None:
    token = unsigned({"iat": 1000, "nbf": 1000, "exp": 2000})
    assert inspect_token(token, now=1500).seconds_left == 500
    assert inspect_token(token, now=1500).expired is False
    assert inspect_token(token, now=1999.5).seconds_left == 0.5
    assert inspect_token(token, now=2000).expired is True  # exp is the first invalid moment
    late = inspect_token(token, now=2600)
    assert late.seconds_left == -600
    assert late.expired is True
    assert late.expires_at == datetime(1970, 1, 1, 0, 33, 20, tzinfo=timezone.utc)


def test_inspect_without_exp() -> None:
    info = inspect_token(unsigned({"sub": "x"}), now=10)
    assert info.seconds_left is None
    assert info.expired is False
    assert info.expires_at is None
    assert info.issued_at is None


def test_inspect_expired_fixture_with_the_real_clock() -> None:
    info = inspect_token(fixture_token("expired-v1.jwt"))
    assert info.expired is True
    assert info.seconds_left is not None and info.seconds_left < 0


def test_float_times_accepted() -> None:
    info = inspect_token(unsigned({"exp": 2000.5, "iat": 1000.25}), now=2000)
    assert info.seconds_left == 0.5
    assert info.issued_at == datetime.fromtimestamp(1000.25, tz=timezone.utc)


def test_token_info_repr_holds_no_claims() -> None:
    info = inspect_token(fixture_token("databricks-v1-user.jwt"), now=ISSUED_AT)
    text = repr(info)
    assert "someone@contoso.onmicrosoft.com" not in text
    assert "RS256" in text


# --- malformed -------------------------------------------------------------------------------

GOOD_HEADER = seg({"typ": "JWT", "alg": "RS256"})
GOOD_PAYLOAD = seg({"sub": "x", "exp": 2000})


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("not a token", id="words"),
        pytest.param(f"{GOOD_HEADER}.{GOOD_PAYLOAD}", id="two-segments"),
        pytest.param(f"{GOOD_HEADER}.{GOOD_PAYLOAD}.sig.extra", id="four-segments"),
        pytest.param(f"{GOOD_HEADER}.{GOOD_PAYLOAD}.a.b.c", id="jwe-five-segments"),
        pytest.param(f".{GOOD_PAYLOAD}.sig", id="empty-header"),
        pytest.param(f"{GOOD_HEADER}..sig", id="empty-payload"),
        pytest.param(f"{GOOD_HEADER}.{GOOD_PAYLOAD[:-1]}!.sig", id="bad-char"),
        pytest.param(f"{GOOD_HEADER}.{GOOD_PAYLOAD}=.sig", id="padding-char"),
        pytest.param(f"{GOOD_HEADER}.{GOOD_PAYLOAD[:-1]}+.sig", id="standard-base64-char"),
        pytest.param(f"{GOOD_HEADER}.A.sig", id="one-char-segment"),
        pytest.param(f"{GOOD_HEADER}.{b64url(b'not json')}.sig", id="payload-not-json"),
        pytest.param(f"{GOOD_HEADER}.{b64url(bytes([0xFF, 0xFE, 0x00]))}.sig", id="payload-not-utf8"),
        pytest.param(f"{GOOD_HEADER}.{seg([1, 2])}.sig", id="payload-array"),
        pytest.param(f"{GOOD_HEADER}.{seg('text')}.sig", id="payload-string"),
        pytest.param(f"{GOOD_HEADER}.{seg(None)}.sig", id="payload-null"),
        pytest.param(f"{GOOD_HEADER}.{seg(12)}.sig", id="payload-number"),
        pytest.param(f"{seg(['alg'])}.{GOOD_PAYLOAD}.sig", id="header-array"),
        pytest.param(f"{seg({'typ': 'JWT'})}.{GOOD_PAYLOAD}.sig", id="header-without-alg"),
        pytest.param(f"{seg({'alg': None})}.{GOOD_PAYLOAD}.sig", id="header-alg-null"),
        pytest.param(f"{seg({'alg': 256})}.{GOOD_PAYLOAD}.sig", id="header-alg-number"),
        pytest.param(unsigned({"exp": "2000"}), id="exp-string"),
        pytest.param(unsigned({"exp": True}), id="exp-bool"),
        pytest.param(unsigned({"exp": None, "iat": [1]}), id="iat-list"),
        pytest.param(unsigned({"nbf": {"t": 1}}), id="nbf-object"),
        pytest.param(GOOD_HEADER + "." + "A" * (MAX_TOKEN_LENGTH + 1) + ".sig", id="huge"),
    ],
)
def test_malformed_tokens_refused(token: str) -> None:
    with pytest.raises(TokenDecodeError):
        unverified_claims(token)
    with pytest.raises(TokenDecodeError):
        inspect_token(token, now=0)


def test_jwe_error_says_encrypted() -> None:
    with pytest.raises(TokenDecodeError, match="encrypted"):
        unverified_claims("a.b.c.d.e")


def test_huge_token_refused_before_decoding() -> None:
    claims = {"sub": "x", "pad": "y" * MAX_TOKEN_LENGTH}
    with pytest.raises(TokenDecodeError, match="longer"):
        unverified_claims(unsigned(claims))


@pytest.mark.parametrize("value", [None, b"a.b.c", 123, ["a", "b", "c"]])
def test_non_str_refused(value: Any) -> None:
    with pytest.raises(TokenDecodeError):
        unverified_claims(value)
    with pytest.raises(TokenDecodeError):
        unverified_header(value)


@pytest.mark.parametrize(
    "name",
    [
        "bad-base64.txt",
        "empty.txt",
        "four-segments.txt",
        "header-not-json.txt",
        "payload-json-array.txt",
        "two-segments.txt",
    ],
)
def test_malformed_fixture_tokens(name: str) -> None:
    with pytest.raises(TokenDecodeError):
        unverified_claims(fixture_token(f"malformed/{name}"))


def test_alg_none_fixture_is_readable_but_not_verifiable() -> None:
    token = fixture_token("malformed/alg-none.txt")
    assert unverified_header(token)["alg"] == "none"
    assert isinstance(unverified_claims(token), dict)
    with pytest.raises(SignatureVerificationError):
        verify_signature(token, {"keys": []})


@pytest.mark.parametrize("where", ["header", "payload"])
def test_deeply_nested_json_is_a_decode_error(where: str) -> None:
    # 20 000 nested arrays fit in well under 64 KiB; json.loads then hits the recursion limit.
    nested = b64url(b"[" * 20000 + b"]" * 20000)
    token = f"{nested}.{GOOD_PAYLOAD}.sig" if where == "header" else f"{GOOD_HEADER}.{nested}.sig"
    assert len(token) < MAX_TOKEN_LENGTH
    with pytest.raises(TokenDecodeError):
        unverified_claims(token)


def test_newline_inside_a_segment_is_not_base64url() -> None:
    header = seg({"alg": "RS256", "x": "a" * 2})
    assert len(header) % 4 == 0  # with the newline the padding arithmetic lets the decoder skip it
    with pytest.raises(TokenDecodeError):
        unverified_claims(f"{header}\n.{GOOD_PAYLOAD}.sig")


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_only_raises_token_decode_error(text: str) -> None:
    try:
        result = unverified_claims(text)
    except TokenDecodeError:
        return
    assert isinstance(result, dict)


_SEGMENT_TEXT = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=60)


@settings(max_examples=200, deadline=None)
@given(st.lists(_SEGMENT_TEXT, min_size=1, max_size=6))
def test_arbitrary_segments_only_raise_token_decode_error(parts: Any) -> None:
    try:
        inspect_token(".".join(parts), now=0)
    except TokenDecodeError:
        pass


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text().filter(lambda k: k not in ("iat", "nbf", "exp")), _JSON, max_size=8),
    st.one_of(st.none(), st.integers(min_value=0, max_value=10**11)),
)
def test_claims_round_trip(claims: Dict[str, Any], exp: Optional[int]) -> None:
    if exp is not None:
        claims = {**claims, "exp": exp}
    assert unverified_claims(unsigned(claims)) == claims
    info = inspect_token(unsigned(claims), now=0)
    assert info.seconds_left == (None if exp is None else exp)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=200))
def test_arbitrary_bytes_in_segments(header: bytes, payload: bytes) -> None:
    try:
        unverified_claims(f"{b64url(header)}.{b64url(payload)}.sig")
    except TokenDecodeError:
        pass


# --- signatures ------------------------------------------------------------------------------


@pytest.fixture
def fx() -> Any:
    if not HAVE_CRYPTO:
        pytest.skip("cryptography is not installed (the crypto extra): RS256 signature checks need it")
    import fixturelib

    return fixturelib


@needs_crypto
@pytest.mark.parametrize(
    "name",
    ["databricks-v1-user.jwt", "databricks-v1-app.jwt", "graph-v2-user.jwt", "id-token-v2.jwt", "expired-v1.jwt"],
)
def test_fixture_tokens_verify(fx: Any, name: str) -> None:
    assert verify_signature(fixture_token(name), fx.jwks()) == FIXTURE_KID


@needs_crypto
def test_minted_token_verifies_with_issuer_and_audience(fx: Any) -> None:
    iss = "https://login.microsoftonline.com/aaaaaaaa-0000-0000-0000-000000000001/v2.0"
    token = fx.mint_jwt({"iss": iss, "aud": "api://x", "exp": 1, "sub": "s"})  # expired: not checked here
    assert verify_signature(token, fx.jwks(), issuer=iss, audience="api://x") == FIXTURE_KID
    assert verify_signature(token, fx.jwks()) == FIXTURE_KID


@needs_crypto
def test_x5t_only_header_finds_the_key(fx: Any) -> None:
    token = fx.mint_jwt({"sub": "s"}, header={"kid": None})
    assert "kid" not in unverified_header(token)
    assert verify_signature(token, fx.jwks()) == FIXTURE_KID


@needs_crypto
def test_tampered_payload(fx: Any) -> None:
    token = fx.mint_jwt({"sub": "user", "roles": ["reader"]})
    header, _payload, signature = token.split(".")
    forged = f"{header}.{seg({'sub': 'user', 'roles': ['admin']})}.{signature}"
    with pytest.raises(SignatureVerificationError):
        verify_signature(forged, fx.jwks())


@needs_crypto
def test_tampered_signature(fx: Any) -> None:
    token = fx.mint_jwt({"sub": "user"})
    header, payload, signature = token.split(".")
    flipped = ("A" if signature[10] != "A" else "B").join([signature[:10], signature[11:]])
    with pytest.raises(SignatureVerificationError):
        verify_signature(f"{header}.{payload}.{flipped}", fx.jwks())
    with pytest.raises(SignatureVerificationError):
        verify_signature(f"{header}.{payload}.", fx.jwks())


@needs_crypto
def test_unknown_kid(fx: Any) -> None:
    token = fx.mint_jwt({"sub": "s"}, header={"kid": "no-such-key", "x5t": "no-such-key"})
    with pytest.raises(SignatureVerificationError, match="no key"):
        verify_signature(token, fx.jwks())


@needs_crypto
def test_no_kid_at_all(fx: Any) -> None:
    token = fx.mint_jwt({"sub": "s"}, header={"kid": None, "x5t": None})
    with pytest.raises(SignatureVerificationError):
        verify_signature(token, fx.jwks())


@needs_crypto
def test_rollover_kid_with_signing_key_signature(fx: Any) -> None:
    token = fx.mint_jwt({"sub": "s"}, header={"kid": ROLLOVER_KID, "x5t": ROLLOVER_KID})
    with pytest.raises(SignatureVerificationError):
        verify_signature(token, fx.jwks())


@needs_crypto
def test_alg_none(fx: Any) -> None:
    token = f"{seg({'alg': 'none', 'typ': 'JWT', 'kid': FIXTURE_KID})}.{seg({'sub': 'admin'})}."
    with pytest.raises(SignatureVerificationError):
        verify_signature(token, fx.jwks())
    with pytest.raises(SignatureVerificationError):
        verify_signature(token, fx.jwks(), algorithms=("RS256", "none"))


@needs_crypto
def test_hs256_signed_with_the_public_key_is_refused(fx: Any) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate((fx.KEYS / "fixture-signing-cert.pem").read_bytes())
    public_pem = cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{seg({'alg': 'HS256', 'typ': 'JWT', 'kid': FIXTURE_KID})}.{seg({'sub': 'admin'})}"
    mac = hmac.new(public_pem, signing_input.encode("ascii"), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64url(mac)}"
    with pytest.raises(SignatureVerificationError):
        verify_signature(forged, fx.jwks())
    # even a caller who allows HS256 must not get an RSA key used as an HMAC secret
    with pytest.raises(SignatureVerificationError):
        verify_signature(forged, fx.jwks(), algorithms=("RS256", "HS256"))
    # the n/e of the JWK as a secret do not work either
    key = fx.jwks()["keys"][0]
    mac2 = hmac.new(json.dumps(key).encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    with pytest.raises(SignatureVerificationError):
        verify_signature(f"{signing_input}.{b64url(mac2)}", fx.jwks(), algorithms=("RS256", "HS256"))


@needs_crypto
def test_signed_by_another_key_with_our_kid(fx: Any) -> None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": "s"}, other, algorithm="RS256", headers={"kid": FIXTURE_KID})
    with pytest.raises(SignatureVerificationError):
        verify_signature(token, fx.jwks())


@needs_crypto
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"issuer": "https://login.microsoftonline.com/other/v2.0"}, "issuer"),
        ({"audience": "api://other"}, "audience"),
    ],
)
def test_wrong_issuer_or_audience(fx: Any, kwargs: Dict[str, str], match: str) -> None:
    token = fx.mint_jwt(
        {"iss": "https://login.microsoftonline.com/aaaaaaaa-0000-0000-0000-000000000001/v2.0", "aud": "api://x"}
    )
    with pytest.raises(SignatureVerificationError, match=match):
        verify_signature(token, fx.jwks(), **kwargs)


@needs_crypto
def test_issuer_or_audience_asked_but_missing(fx: Any) -> None:
    token = fx.mint_jwt({"sub": "s"})
    with pytest.raises(SignatureVerificationError):
        verify_signature(token, fx.jwks(), issuer="https://login.microsoftonline.com/x/v2.0")
    with pytest.raises(SignatureVerificationError):
        verify_signature(token, fx.jwks(), audience="api://x")


@needs_crypto
@pytest.mark.parametrize("jwks", [{}, {"keys": None}, {"keys": {"kid": FIXTURE_KID}}, {"keys": []}])
def test_bad_jwks(fx: Any, jwks: Dict[str, Any]) -> None:
    with pytest.raises(SignatureVerificationError):
        verify_signature(fixture_token("id-token-v2.jwt"), jwks)


@needs_crypto
def test_malformed_token_is_a_decode_error(fx: Any) -> None:
    with pytest.raises(TokenDecodeError):
        verify_signature("a.b", fx.jwks())


@pytest.mark.parametrize("exp", [10**11 + 1, -(10**11) - 1, 10**400])
def test_time_claims_out_of_range_are_refused(exp: int) -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"RS256"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenDecodeError, match="out of range"):
        unverified_claims(f"{header}.{payload}.sig")
