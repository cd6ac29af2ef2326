"""Federated users in the password grant: WS-Trust RST and RSTR, the SAML bearer grant, the flow. Pure.

A user whose domain is federated (e.g. to AD FS) has no password at Entra: Entra's own password
grant refuses them. As MSAL does (entra-protocol-2.md §4), the client asks Entra for the user's
realm (``GET /common/userrealm/{user}``); a ``Federated`` realm names the federation metadata
(MEX) whose WS-Trust ``usernamemixed`` endpoint takes the username and password in a SOAP request
for a security token (RST, WS-Trust 1.3 or 2005); both are in
:mod:`oauth_core.core.wstrust_discovery` and re-exported here. The answer (RSTR) holds a signed
SAML 1.1 or 2.0 assertion, which the client redeems at Entra's token endpoint with the
``saml1_1-bearer`` or ``saml2-bearer`` grant (RFC 7522). Managed and unknown realms use the
ordinary password grant.

:func:`federated_password_flow` is the whole sign-in as a generator of requests. The assertion is
cut from the body as it was sent, never re-serialised, so its signature still holds.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable, Generator, Mapping, Optional, Sequence, Tuple

from .authority import Authority
from .errors import ConfigError
from .grants import build_token_request, password_grant, token_flow
from .messages import HttpRequest, HttpResponse, Pairs, TokenSet
from .redaction import terminal_safe
from .wstrust_discovery import (
    DEFAULT_CLOUD_AUDIENCE_URN,
    DIALECTS,
    NS,
    WSTRUST_13,
    WSTRUST_2005,
    UserRealm,
    WsTrustEndpoint,
    endpoint_for_address,
    local_name,
    malformed,
    mex_request,
    parse_mex,
    parse_user_realm,
    parse_xml,
    scrubbed,
    user_realm_request,
    xml_escape,
    xml_text,
)
from .wstrust_errors import FederatedSignInFailed, FederationNotSupported

__all__ = [
    "DEFAULT_CLOUD_AUDIENCE_URN",
    "SAML1_1_BEARER_GRANT",
    "SAML2_BEARER_GRANT",
    "SAML_1_1_TOKEN_TYPE",
    "SAML_2_0_TOKEN_TYPE",
    "WSTRUST_13",
    "WSTRUST_2005",
    "SamlAssertion",
    "UserRealm",
    "WsTrustEndpoint",
    "endpoint_for_address",
    "federated_password_flow",
    "mex_request",
    "parse_mex",
    "parse_rstr",
    "parse_user_realm",
    "rst_request",
    "saml_grant",
    "user_realm_request",
]

SAML_1_1_TOKEN_TYPE = "urn:oasis:names:tc:SAML:1.0:assertion"
SAML_2_0_TOKEN_TYPE = "urn:oasis:names:tc:SAML:2.0:assertion"
SAML1_1_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:saml1_1-bearer"  # Microsoft's own
SAML2_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:saml2-bearer"  # RFC 7522
_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
_PROFILE = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1"
# RSTR TokenType -> the grant that redeems it (§4.5).
_GRANT_BY_TOKEN_TYPE: Mapping[str, str] = {
    SAML_1_1_TOKEN_TYPE: SAML1_1_BEARER_GRANT,
    f"{_PROFILE}#SAMLV1.1": SAML1_1_BEARER_GRANT,
    SAML_2_0_TOKEN_TYPE: SAML2_BEARER_GRANT,
    f"{_PROFILE}#SAMLV2.0": SAML2_BEARER_GRANT,
}


@dataclass(frozen=True)
class SamlAssertion:
    """The SAML assertion of an RSTR, byte for byte as the federation service signed it.

    Attributes:
        assertion: the ``saml:Assertion`` element's XML (a bearer credential: redacted in ``repr``).
        token_type: the RSTR's ``TokenType`` (SAML 1.1 or 2.0).
    """

    assertion: bytes
    token_type: str

    @property
    def grant_type(self) -> str:
        """The grant that redeems it: ``saml1_1-bearer`` or ``saml2-bearer``."""
        return _GRANT_BY_TOKEN_TYPE[self.token_type]

    def __repr__(self) -> str:
        return f"SamlAssertion(token_type={self.token_type!r}, assertion=<redacted {len(self.assertion)} bytes>)"

    __str__ = __repr__


# -- RST ------------------------------------------------------------------------------------------

# Characters XML 1.0 cannot carry at all (besides tab, line feed and carriage return).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml_value(name: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"the {name} is empty")
    if _NOT_XML.search(value):
        raise ConfigError(f"the {name} holds control characters that cannot be sent in XML")
    return xml_escape(value)


_RST_LIFETIME = 600.0  # the timestamp's Expires: 10 minutes after Created, as MSAL


def _wsu_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_RST = """\
<s:Envelope xmlns:s="{s}" xmlns:wsa="{wsa}" xmlns:wsu="{wsu}">\
<s:Header>\
<wsa:Action s:mustUnderstand="1">{action}</wsa:Action>\
<wsa:MessageID>urn:uuid:{message_id}</wsa:MessageID>\
<wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>\
<wsa:To s:mustUnderstand="1">{to}</wsa:To>\
<wsse:Security s:mustUnderstand="1" xmlns:wsse="{wsse}">\
<wsu:Timestamp wsu:Id="_0"><wsu:Created>{created}</wsu:Created><wsu:Expires>{expires}</wsu:Expires></wsu:Timestamp>\
<wsse:UsernameToken wsu:Id="UsernameToken-1">\
<wsse:Username>{username}</wsse:Username><wsse:Password>{password}</wsse:Password>\
</wsse:UsernameToken>\
</wsse:Security>\
</s:Header>\
<s:Body>\
<wst:RequestSecurityToken xmlns:wst="{wst}">\
<wsp:AppliesTo xmlns:wsp="{wsp}">\
<wsa:EndpointReference><wsa:Address>{applies_to}</wsa:Address></wsa:EndpointReference>\
</wsp:AppliesTo>\
<wst:KeyType>{key_type}</wst:KeyType>\
<wst:RequestType>{request_type}</wst:RequestType>\
</wst:RequestSecurityToken>\
</s:Body>\
</s:Envelope>"""


def rst_request(
    endpoint: WsTrustEndpoint,
    username: str,
    password: str,
    cloud_audience_urn: str = DEFAULT_CLOUD_AUDIENCE_URN,
    *,
    now: float,
    message_id: str,
) -> HttpRequest:
    """The WS-Trust Issue request (RST) for a SAML bearer assertion, with the username token.

    SOAP 1.2 for both versions, as MSAL sends it (the endpoints it picks are SOAP 1.2 bindings),
    with ``Content-Type: application/soap+xml; charset=utf-8`` and ``SOAPAction``; the version
    decides the action, the ``wst`` namespace, ``KeyType`` and ``RequestType`` (§4.3). The
    timestamp is valid from ``now`` for 10 minutes. ``repr`` of the request shows only the
    body's length: the body holds the password.

    Args:
        endpoint: where to send it (from :func:`parse_mex` or :func:`endpoint_for_address`).
        username, password: the user's credentials (XML-escaped here).
        cloud_audience_urn: who the assertion is for (the realm's ``cloud_audience_urn``).
        now: epoch seconds.
        message_id: a UUID for ``wsa:MessageID`` (sent as ``urn:uuid:<message_id>``).

    Raises:
        ConfigError: an empty username or password, or one holding characters XML cannot carry.
    """
    dialect = DIALECTS[endpoint.version]
    envelope = _RST.format(
        s=NS["s"],
        wsa=NS["wsa"],
        wsu=NS["wsu"],
        wsse=_WSSE,
        wsp=NS["wsp"],
        wst=dialect.namespace,
        action=dialect.action,
        message_id=_xml_value("message id", message_id),
        to=_xml_value("endpoint address", endpoint.address),
        created=_wsu_time(now),
        expires=_wsu_time(now + _RST_LIFETIME),
        username=_xml_value("username", username),
        password=_xml_value("password", password),
        applies_to=_xml_value("cloud audience URN", cloud_audience_urn),
        key_type=dialect.key_type,
        request_type=dialect.request_type,
    )
    return HttpRequest(
        method="POST",
        url=endpoint.address,
        headers=(("content-type", "application/soap+xml; charset=utf-8"), ("soapaction", dialect.action)),
        content=envelope.encode("utf-8"),
        once=True,  # a wrong password answers 500 with a SOAP fault: never resent (extranet lockout)
    )


# -- RSTR -----------------------------------------------------------------------------------------

_PREFIX = r"(?:[A-Za-z_][\w.-]*:)?"
_TOKEN_START = re.compile(rf"<{_PREFIX}RequestedSecurityToken(?=[\s/>])[^>]*>")
_TOKEN_END = re.compile(rf"</{_PREFIX}RequestedSecurityToken\s*>")
_MAX_TEXT = 300


def _child(element: ET.Element, name: str) -> Optional[ET.Element]:
    return next((c for c in element if local_name(c.tag) == name), None)


def _raw_token(text: str, index: int, count: int) -> Optional[str]:
    """The inner XML of the ``index``-th of ``count`` RequestedSecurityToken elements, as written."""
    starts = list(_TOKEN_START.finditer(text))
    if len(starts) != count:  # one hidden in a comment or CDATA section: refuse rather than guess
        return None
    end = _TOKEN_END.search(text, starts[index].end())
    return text[starts[index].end() : end.start()].strip() if end else None


def _server_text(value: Optional[str], redact: Sequence[str]) -> Optional[str]:
    if value is None or not value.strip():
        return None
    text = terminal_safe(scrubbed(value.strip(), redact))
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


def _fault(root: ET.Element, response: HttpResponse, redact: Sequence[str]) -> Optional[FederatedSignInFailed]:
    """The SOAP 1.2 (or 1.1) fault of the body, if it is one."""
    fault12 = root.find("s:Body/s:Fault", NS)
    if fault12 is not None:
        code = fault12.findtext("s:Code/s:Value", None, NS)
        subcode = fault12.findtext("s:Code/s:Subcode/s:Value", None, NS)
        reason = fault12.findtext("s:Reason/s:Text", None, NS)
    else:
        fault11 = root.find("s11:Body/s11:Fault", NS)
        if fault11 is None:
            return None
        code, subcode, reason = fault11.findtext("faultcode"), None, fault11.findtext("faultstring")
    code, subcode, reason = (_server_text(v, redact) for v in (code, subcode, reason))
    said = reason or "no reason given"
    return FederatedSignInFailed(
        f"the federation service refused the sign-in (HTTP {response.status}): {said}"
        + (f" [{subcode or code}]" if subcode or code else ""),
        code=code,
        subcode=subcode,
        reason=reason,
        status=response.status,
    )


def parse_rstr(response: HttpResponse, *, redact: Sequence[str] = ()) -> SamlAssertion:
    """The SAML assertion of a WS-Trust response (RSTR), or the SOAP fault it carries, raised.

    The status is not relied on (AD FS answers a wrong password with a 500 fault). The first
    ``RequestSecurityTokenResponse`` (1.3 wraps it in a collection, 2005 does not) with a
    ``TokenType`` and a ``RequestedSecurityToken`` holding an ``Assertion`` wins; the assertion is
    cut from the body as sent (§4.4).

    Args:
        response: the endpoint's answer.
        redact: values (the password) to remove from any server text put in an error.

    Raises:
        FederatedSignInFailed: a SOAP fault (wrong password, locked account ...).
        FederationNotSupported: an assertion that is neither SAML 1.1 nor 2.0.
        MalformedFederationResponse: not UTF-8 XML, a DTD, HTML, or neither token nor fault.
    """
    what = "WS-Trust response"
    text = xml_text(response, what, redact)
    root = parse_xml(text, response, what, redact)
    holders = [e for e in root.iter() if local_name(e.tag) == "RequestedSecurityToken"]
    for rstr in (e for e in root.iter() if local_name(e.tag) == "RequestSecurityTokenResponse"):
        token_type, holder = _child(rstr, "TokenType"), _child(rstr, "RequestedSecurityToken")
        if token_type is None or holder is None or not (token_type.text or "").strip():
            continue
        if [local_name(c.tag) for c in holder] != ["Assertion"]:
            raise malformed(response, what, "holds a token that is not one SAML assertion", redact)
        raw = _raw_token(text, holders.index(holder), len(holders))
        if not raw or not raw.startswith("<") or not raw.endswith(">"):
            raise malformed(response, what, "holds a token that cannot be cut out as sent", redact)
        kind = (token_type.text or "").strip()
        if kind not in _GRANT_BY_TOKEN_TYPE:
            raise FederationNotSupported(
                f"the federation service issued an unsupported token type {_server_text(kind, redact)!r}"
            )
        return SamlAssertion(assertion=raw.encode("utf-8"), token_type=kind)
    fault = _fault(root, response, redact)
    if fault is not None:
        raise fault
    raise malformed(response, what, "holds neither a security token nor a SOAP fault", redact)


def saml_grant(assertion: SamlAssertion) -> Pairs:
    """The SAML bearer grant's fields: ``assertion`` is the XML in base64url without padding, as MSAL sends it."""
    encoded = base64.urlsafe_b64encode(assertion.assertion).rstrip(b"=").decode("ascii")
    return (("grant_type", assertion.grant_type), ("assertion", encoded))


# -- the flow -------------------------------------------------------------------------------------


def _new_message_id() -> str:
    return str(uuid.uuid4())


def _with_anchor(request: HttpRequest, username: str) -> HttpRequest:
    """MSAL's routing hint on the plain password grant: ``X-AnchorMailbox: upn:<username>``."""
    if any(k.lower() == "x-anchormailbox" for k, _ in request.headers) or not (
        username.isascii() and username.isprintable()
    ):
        return request
    return replace(request, headers=(*request.headers, ("x-anchormailbox", f"upn:{username}")))


def _ws_trust_endpoint(realm: UserRealm) -> Tuple[Optional[str], Optional[WsTrustEndpoint]]:
    """The MEX URL to fetch, or the endpoint itself when the realm names no MEX document."""
    protocol = realm.federation_protocol
    if protocol is not None and protocol.lower() != "wstrust":
        raise FederationNotSupported(
            f"the user's domain is federated with {terminal_safe(protocol)[:40]!r}, not WS-Trust: "
            "a password cannot be sent to it"
        )
    if realm.federation_metadata_url:
        return realm.federation_metadata_url, None
    if realm.federation_active_auth_url:
        return None, endpoint_for_address(realm.federation_active_auth_url)
    raise FederationNotSupported("the user's domain is federated, but Entra names no WS-Trust metadata or endpoint")


def federated_password_flow(
    authority: Authority,
    client_id: str,
    username: str,
    password: str,
    scopes: Sequence[str],
    *,
    clock: Callable[[], float] = time.time,
    headers: Pairs = (),
    token_request: Optional[Callable[[Pairs], HttpRequest]] = None,
    message_id: Callable[[], str] = _new_message_id,
) -> Generator[HttpRequest, HttpResponse, TokenSet]:
    """The password grant for any user: user realm, then plain ROPC, or WS-Trust and a SAML bearer grant.

    Requests, in order: the user realm lookup; for a ``Managed`` or ``Unknown`` realm the password
    grant (with ``X-AnchorMailbox: upn:<username>``); for a ``Federated`` one the MEX document
    (when the realm names one), the RST to its usernamemixed endpoint, then the SAML bearer grant.

    Args:
        authority: Entra's host (the realm lookup goes to its ``/common``) and tenant.
        client_id, scopes: used by the default ``token_request`` (a public client).
        username, password: the user's credentials; the password goes only to the token endpoint
            or the federation's https endpoint, and into no message.
        clock: epoch seconds (the RST's timestamp, the tokens' expiry).
        headers: per-call headers (``client-request-id`` ...) for the realm lookup and default token request.
        token_request: builds the token request for a grant's pairs with the client's credential and
            scopes (``lambda grant: client.token_request(grant, scopes)``).
        message_id: a new UUID for the RST's ``wsa:MessageID``.

    Raises:
        UserRealmLookupFailed, FederationNotSupported, NoUsernamePasswordEndpoint,
        MalformedFederationResponse, FederatedSignInFailed: see :mod:`oauth_core.core.wstrust_errors`.
        (and everything :func:`~oauth_core.core.grants.token_flow` raises)
    """

    def public_client_request(grant: Pairs) -> HttpRequest:
        return build_token_request(authority, client_id, grant, scopes=scopes, headers=headers)

    build = token_request or public_client_request
    realm = parse_user_realm((yield user_realm_request(authority, username, headers)))
    if not realm.is_federated:
        request = _with_anchor(build(password_grant(username, password)), username)
        return (yield from token_flow(request, clock=clock))
    mex_url, endpoint = _ws_trust_endpoint(realm)
    if mex_url is not None:
        endpoint = parse_mex((yield mex_request(mex_url)))
    assert endpoint is not None
    rst = rst_request(endpoint, username, password, realm.cloud_audience_urn, now=clock(), message_id=message_id())
    assertion = parse_rstr((yield rst), redact=(password,))
    return (yield from token_flow(build(saml_grant(assertion)), clock=clock))
