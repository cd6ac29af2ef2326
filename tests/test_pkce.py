"""PKCE (RFC 7636), state and nonce: lengths, alphabets, the S256 challenge, constant-time compare."""

from __future__ import annotations

import base64
import hashlib
import re
import string
from typing import Callable

import pytest
from hypothesis import example, given, settings, strategies as st

from oauth_core.core.errors import ConfigError
from oauth_core.core.pkce import code_challenge, new_code_verifier, new_nonce, new_state, values_match

UNRESERVED = string.ascii_letters + string.digits + "-._~"
VERIFIER_RE = re.compile(r"\A[A-Za-z0-9\-._~]{43,128}\Z")
B64URL_43 = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")

# RFC 7636 Appendix B
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def _b64url_decoded_bits(value: str) -> int:
    return len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))) * 8


def test_rfc7636_appendix_b_vector() -> None:
    assert code_challenge(RFC_VERIFIER) == RFC_CHALLENGE


def test_challenge_is_unpadded_base64url_sha256() -> None:
    verifier = "~." * 30
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    assert code_challenge(verifier) == expected
    assert "=" not in code_challenge(verifier)


def test_default_verifier() -> None:
    verifier = new_code_verifier()
    assert VERIFIER_RE.match(verifier)
    assert len(verifier) == 64
    assert _b64url_decoded_bits(verifier) == 48 * 8


@pytest.mark.parametrize(("nbytes", "length"), [(32, 43), (33, 44), (48, 64), (95, 127), (96, 128)])
def test_verifier_length_bounds(nbytes: int, length: int) -> None:
    verifier = new_code_verifier(nbytes)
    assert len(verifier) == length
    assert VERIFIER_RE.match(verifier)
    assert B64URL_43.match(code_challenge(verifier))


@pytest.mark.parametrize("nbytes", [-1, 0, 16, 31, 97, 128])
def test_verifier_size_out_of_range(nbytes: int) -> None:
    with pytest.raises(ConfigError):
        new_code_verifier(nbytes)


def test_verifiers_state_nonce_are_unique() -> None:
    for factory in (new_code_verifier, new_state, new_nonce):
        values = {factory() for _ in range(200)}
        assert len(values) == 200, factory.__name__


@pytest.mark.parametrize("factory", [new_state, new_nonce])
def test_state_and_nonce_have_at_least_128_bits(factory: Callable[[], str]) -> None:
    value = factory()
    assert re.fullmatch(r"[A-Za-z0-9_-]+", value)
    assert _b64url_decoded_bits(value) >= 128
    assert len(value) >= 22


def test_state_and_nonce_differ_from_each_other() -> None:
    assert new_state() != new_nonce()


def test_values_match() -> None:
    state = new_state()
    assert values_match(state, state)
    assert values_match(state, str(state))
    assert not values_match(state, state[:-1])
    assert not values_match(state, state + "x")
    assert not values_match(state, "")
    assert not values_match("abc", "ABC")
    assert values_match("n\u00e9e", "n\u00e9e")
    assert not values_match("n\u00e9e", "nee")


@pytest.mark.parametrize(
    "verifier",
    [
        "",
        "a" * 42,
        "a" * 129,
        "a" * 42 + "=",
        "a" * 42 + "+",
        "a" * 42 + "/",
        "a" * 42 + " ",
        "a" * 42 + "\u00e9",
        "\u0661" * 43,  # Arabic-Indic digit one: a Unicode digit, not an ASCII DIGIT
    ],
)
def test_invalid_verifiers_refused(verifier: str) -> None:
    with pytest.raises(ConfigError):
        code_challenge(verifier)


@pytest.mark.parametrize("verifier", ["a" * 43 + "\n", RFC_VERIFIER + "\n", "\n" + RFC_VERIFIER])
def test_verifier_with_newline_refused(verifier: str) -> None:
    # `$` in a regex also matches before a trailing newline; a newline is not an unreserved character.
    with pytest.raises(ConfigError):
        code_challenge(verifier)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=UNRESERVED, min_size=43, max_size=128))
def test_any_valid_verifier_gives_a_43_char_base64url_challenge(verifier: str) -> None:
    challenge = code_challenge(verifier)
    assert B64URL_43.match(challenge)
    assert base64.urlsafe_b64decode(challenge + "=") == hashlib.sha256(verifier.encode("ascii")).digest()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
@example("a" * 43 + "\n")
@example("a" * 42)
def test_invalid_verifiers_raise_config_error(verifier: str) -> None:
    if VERIFIER_RE.match(verifier):
        assert B64URL_43.match(code_challenge(verifier))
    else:
        with pytest.raises(ConfigError):
            code_challenge(verifier)


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=UNRESERVED, min_size=43, max_size=128),
    st.sampled_from(["\n", " ", "=", "+", "/", "%", "\u00e9", "\x00"]),
    st.integers(min_value=0, max_value=128),
)
@example(RFC_VERIFIER, "\n", 43)
@example(RFC_VERIFIER, "=", 0)
def test_one_bad_character_anywhere_is_refused(verifier: str, bad: str, where: int) -> None:
    where = min(where, len(verifier))
    with pytest.raises(ConfigError):
        code_challenge(verifier[:where] + bad + verifier[where:])


def test_states_never_start_with_a_dash() -> None:
    # `--state <value>` on a command line: a leading "-" would read as an option
    from oauth_core.core.pkce import new_state

    states = [new_state() for _ in range(2000)]  # about 31 of them would start with "-" by chance
    assert not any(s.startswith("-") for s in states)
    assert len(set(states)) == len(states) and all(len(s) == 43 for s in states)
