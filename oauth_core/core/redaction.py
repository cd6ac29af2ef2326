"""Redaction: server text made safe to log and print, with anything token-like replaced.

:func:`redacted_snippet` shortens a body for an error message or a log line and redacts tokens,
codes, passwords and secrets in it; :func:`terminal_safe` strips escape sequences and control
characters from text a server chose. Pure: no I/O here.
"""

from __future__ import annotations

import re

__all__ = ["SECRET_FIELDS", "redacted_snippet", "terminal_safe"]

# Form fields whose values are secrets: never shown in a repr, a log line or an error.
SECRET_FIELDS = frozenset(
    {
        "password",
        "client_secret",
        "refresh_token",
        "code",
        "code_verifier",
        "client_assertion",
        "device_code",
        "assertion",
    }
)

_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*")
_LONG_OPAQUE = re.compile(r"[A-Za-z0-9._~+/=-]{32,}")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
# A URL, or an absolute path (with its query) standing on its own, as in an HTTP request line.
_LOCATION = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>`]+|(?<![^\s\"'(\[])/[^\s\"'<>`]*")
_HOST_PORT = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?")
_GUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SECRET_NAMES = frozenset(
    {*SECRET_FIELDS, "access_token", "id_token", "token", "assertion", "secret", "sig", "signature", "state", "nonce"}
)
_SECRET_PARTS = ("token", "secret", "password", "passwd", "assertion", "verifier")
# Form and query pairs (``name=value``) and JSON members (``"name": "value"``) that may hold a secret.
_NAME = r"[A-Za-z_][A-Za-z0-9_.-]{0,63}"
_SECRET_PAIR = re.compile(
    rf"""(?P<key>(?P<quote>["'])(?P<quoted>{_NAME})(?P=quote)\s*:\s*|(?<![A-Za-z0-9_.-])(?P<name>{_NAME})=)"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s&,;"'}<>]+)"""
)
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI (colours, cursor moves)
    r"|\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"  # the other escapes
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # 8-bit CSI
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x9c)?"  # 8-bit string controls
)
# C0 and C1 controls, DEL, and the bidirectional overrides that reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # lone surrogates: unprintable, and unencodable as UTF-8


def terminal_safe(text: str, *, multiline: bool = False) -> str:
    """Server-provided text made safe to print: escape sequences and control characters removed.

    With ``multiline``, line ends (``\\n``, and ``\\r\\n`` as ``\\n``) and tabs are kept; otherwise
    they become spaces, so the text stays on one line.
    """
    text = _SURROGATE.sub("\ufffd", _ESCAPE_SEQUENCE.sub("", text))
    if multiline:
        text = text.replace("\r\n", "\n")
        return _CONTROL.sub(lambda m: m.group() if m.group() in "\n\t" else "", text)
    return _CONTROL.sub(lambda m: " " if m.group() in "\n\r\t" else "", text)


def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or any(part in lowered for part in _SECRET_PARTS)


def _redact_words(text: str) -> str:
    """JWTs and long opaque strings (not GUIDs: tenant, correlation and trace ids) become ``[redacted]``."""
    text = _JWT_LIKE.sub("[redacted]", text)
    return _LONG_OPAQUE.sub(lambda m: m.group() if _GUID_TEXT.fullmatch(m.group()) else "[redacted]", text)


def _redact_pairs(text: str) -> str:
    def pair(match: re.Match[str]) -> str:
        name = match.group("quoted") or match.group("name")
        return match.group("key") + "[redacted]" if _is_secret_name(name) else match.group()

    return _SECRET_PAIR.sub(pair, text)


def _redact_query(query: str) -> str:
    pairs = []
    for item in query.split("&"):
        name, sep, value = item.partition("=")
        pairs.append(name + sep + ("[redacted]" if sep and _is_secret_name(name) else _redact_words(value)))
    return "&".join(pairs)


def _redact_target(target: str) -> str:
    """``/path?query#fragment``: path segments kept unless token-like, secret-named values redacted."""
    target, hash_sign, fragment = target.partition("#")
    path, question, query = target.partition("?")
    path = "/".join(_redact_words(segment) for segment in path.split("/"))
    return (
        f"{path}{question}{_redact_query(query) if question else ''}"
        f"{hash_sign}{_redact_query(fragment) if hash_sign else ''}"
    )


def _redact_location(location: str) -> str:
    """A URL (or path) with its scheme, host, port and path kept readable, and its secrets redacted."""
    if "://" not in location:
        return _redact_target(location)
    scheme, _, rest = location.partition("://")
    cut = min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0] or [len(rest)])
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority:
        authority = "[redacted]@" + authority.rpartition("@")[2]  # user:password@
    if not _HOST_PORT.fullmatch(authority.rpartition("@")[2]):
        authority = _redact_words(authority)
    return f"{scheme}://{authority}{_redact_target(tail)}"


def _redact_text(text: str) -> str:
    """URLs and paths kept readable (their secrets redacted), anything token-like elsewhere redacted."""
    text = _redact_pairs(text)
    pieces, last = [], 0
    for match in _LOCATION.finditer(text):
        pieces += [_redact_words(text[last : match.start()]), _redact_location(match.group())]
        last = match.end()
    pieces.append(_redact_words(text[last:]))
    return "".join(pieces)


def redacted_snippet(body: bytes, limit: int = 160) -> str:
    """A short, printable start of a body with anything token-like replaced by ``[redacted]``.

    Tokens, passwords, codes, assertions and secrets are redacted: JWTs, long opaque strings, and
    the values of secret-named fields (``password=``, ``"refresh_token": ...``, a URL's ``code=``).
    URLs keep their scheme, host, port and path, so a log line still says where a request went.
    """
    text = body[: limit * 8].decode("utf-8", errors="replace")
    title = _TITLE.search(text)
    if title:
        text = "<title>" + title.group(1) + "</title> " + _TITLE.sub("", text)
    text = _redact_text(text)
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
