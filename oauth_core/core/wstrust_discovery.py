"""Who signs a federated user in: Entra's user realm lookup and the federation's MEX document. Pure.

``GET /common/userrealm/{user}`` says whether the user's domain is ``Federated`` and where its
federation metadata (MEX, a WSDL document) lives; :func:`parse_mex` picks the WS-Trust
username/password (``usernamemixed``) endpoint from it as MSAL does (entra-protocol-2.md §4.1,
§4.2). The RST sent there, its answer and the whole flow are in :mod:`oauth_core.core.wstrust`,
which re-exports the names here.

XML is parsed with :mod:`xml.etree.ElementTree`, and only UTF-8 bodies without a DTD reach the
parser (no entity can be declared, so none can be expanded); bodies are size-capped by the
transport. :func:`xml_root` and the other unlisted helpers are shared with ``wstrust``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence
from urllib.parse import quote, urlsplit

from .authority import Authority, is_loopback_host
from .errors import ConfigError, ResponseFormatError
from .messages import HttpRequest, HttpResponse, Pairs, parse_json_object
from .redaction import redacted_snippet
from .wstrust_errors import (
    FederationNotSupported,
    MalformedFederationResponse,
    NoUsernamePasswordEndpoint,
    UserRealmLookupFailed,
)

__all__ = [
    "DEFAULT_CLOUD_AUDIENCE_URN",
    "DIALECTS",
    "WSTRUST_13",
    "WSTRUST_2005",
    "UserRealm",
    "WsTrustDialect",
    "WsTrustEndpoint",
    "endpoint_for_address",
    "mex_request",
    "parse_mex",
    "parse_user_realm",
    "user_realm_request",
]

DEFAULT_CLOUD_AUDIENCE_URN = "urn:federation:MicrosoftOnline"
WSTRUST_13 = "1.3"
WSTRUST_2005 = "2005"

NS = {
    "wsdl": "http://schemas.xmlsoap.org/wsdl/",
    "soap12": "http://schemas.xmlsoap.org/wsdl/soap12/",
    "wsp": "http://schemas.xmlsoap.org/ws/2004/09/policy",
    "sp": "http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702",
    "sp2005": "http://schemas.xmlsoap.org/ws/2005/07/securitypolicy",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "s11": "http://schemas.xmlsoap.org/soap/envelope/",
}
_SOAP_HTTP_TRANSPORT = "http://schemas.xmlsoap.org/soap/http"


@dataclass(frozen=True)
class WsTrustDialect:
    """What differs between the two WS-Trust versions in an RST (entra-protocol-2.md §4.3)."""

    action: str
    namespace: str
    key_type: str
    request_type: str


DIALECTS: Mapping[str, WsTrustDialect] = {
    WSTRUST_13: WsTrustDialect(
        action="http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue",
        namespace="http://docs.oasis-open.org/ws-sx/ws-trust/200512",
        key_type="http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer",
        request_type="http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue",
    ),
    WSTRUST_2005: WsTrustDialect(
        action="http://schemas.xmlsoap.org/ws/2005/02/trust/RST/Issue",
        namespace="http://schemas.xmlsoap.org/ws/2005/02/trust",
        key_type="http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey",
        request_type="http://schemas.xmlsoap.org/ws/2005/02/trust/Issue",
    ),
}
_VERSION_BY_ACTION = {dialect.action: version for version, dialect in DIALECTS.items()}
# Without a MEX document, the version is read from the address (MSAL's guess).
_VERSION_BY_PATH = (("/trust/2005/usernamemixed", WSTRUST_2005), ("/trust/13/usernamemixed", WSTRUST_13))
_ACCOUNT_TYPES = {"federated": "Federated", "managed": "Managed"}


@dataclass(frozen=True)
class UserRealm:
    """What Entra knows of a user's domain (``/common/userrealm``).

    Attributes:
        account_type: ``Federated``, ``Managed`` or ``Unknown`` (anything else, or no realm lookup).
        federation_protocol: ``WSTrust`` for AD FS-style federation, if federated.
        federation_metadata_url: the MEX document, if federated.
        federation_active_auth_url: the WS-Trust endpoint to use when there is no MEX document.
        cloud_audience_urn: the ``AppliesTo`` of the RST (who the assertion is for).
        domain_name: the user's domain as Entra names it, if given.
    """

    account_type: str
    federation_protocol: Optional[str] = None
    federation_metadata_url: Optional[str] = None
    federation_active_auth_url: Optional[str] = None
    cloud_audience_urn: str = DEFAULT_CLOUD_AUDIENCE_URN
    domain_name: Optional[str] = None

    @property
    def is_federated(self) -> bool:
        return self.account_type == "Federated"


@dataclass(frozen=True)
class WsTrustEndpoint:
    """A WS-Trust username/password endpoint: its https ``address`` and ``version`` (1.3 or 2005)."""

    address: str
    version: str

    @property
    def action(self) -> str:
        """The ``SOAPAction`` (and ``wsa:Action``) of an Issue request at this endpoint."""
        return DIALECTS[self.version].action


# -- user realm -----------------------------------------------------------------------------------


def user_realm_request(authority: Authority, username: str, headers: Pairs = ()) -> HttpRequest:
    """``GET {host}/common/userrealm/{username}?api-version=1.0`` (MSAL sends ``@`` as it is).

    Raises:
        ConfigError: an empty username.
    """
    if not isinstance(username, str) or not username.strip():
        raise ConfigError("the username is empty")
    url = f"{authority.host}/common/userrealm/{quote(username, safe='@')}?api-version=1.0"
    return HttpRequest(method="GET", url=url, headers=(("accept", "application/json"), *headers))


def _optional_text(body: Mapping[str, object], name: str) -> Optional[str]:
    value = body.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_user_realm(response: HttpResponse) -> UserRealm:
    """The user realm answer as a :class:`UserRealm`.

    A 404 means the host does no realm discovery: the realm is ``Unknown`` and the ordinary
    password grant follows (as MSAL). ``account_type`` is compared without regard to case
    (MSAL.NET and MSAL Java do; MSAL Python compares exactly).

    Raises:
        UserRealmLookupFailed: any other non-2xx status, or a body that is not a JSON object.
    """
    if response.status == 404:
        return UserRealm(account_type="Unknown")
    if not 200 <= response.status < 300:
        raise UserRealmLookupFailed(
            f"the user realm lookup answered HTTP {response.status}",
            status=response.status,
            snippet=redacted_snippet(response.body),
        )
    try:
        body = parse_json_object(response)
    except ResponseFormatError as exc:
        raise UserRealmLookupFailed(f"user realm lookup: {exc}", status=exc.status, snippet=exc.snippet) from None
    account_type = _optional_text(body, "account_type") or ""
    return UserRealm(
        account_type=_ACCOUNT_TYPES.get(account_type.lower(), "Unknown"),
        federation_protocol=_optional_text(body, "federation_protocol"),
        federation_metadata_url=_optional_text(body, "federation_metadata_url"),
        federation_active_auth_url=_optional_text(body, "federation_active_auth_url"),
        cloud_audience_urn=_optional_text(body, "cloud_audience_urn") or DEFAULT_CLOUD_AUDIENCE_URN,
        domain_name=_optional_text(body, "domain_name"),
    )


# -- XML ------------------------------------------------------------------------------------------

_DTD = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_PASSWORD_ELEMENT = re.compile(r"(<(?:[\w.-]+:)?Password\b[^>]*>)[^<]*", re.IGNORECASE)


def _safe_snippet(body: bytes, redact: Sequence[str] = ()) -> str:
    """A redacted snippet of an XML body: password elements and the ``redact`` values removed first."""
    text = _PASSWORD_ELEMENT.sub(r"\1[redacted]", body.decode("utf-8", errors="replace"))
    return redacted_snippet(scrubbed(text, redact).encode("utf-8"))


def scrubbed(text: str, redact: Sequence[str]) -> str:
    for secret in redact:
        if secret:
            for form in (xml_escape(secret), secret):
                text = text.replace(form, "[redacted]")
    return text


def malformed(
    response: HttpResponse, what: str, problem: str, redact: Sequence[str] = ()
) -> MalformedFederationResponse:
    return MalformedFederationResponse(
        f"the {what} (HTTP {response.status}) {problem}",
        status=response.status,
        snippet=_safe_snippet(response.body, redact),
    )


def xml_text(response: HttpResponse, what: str, redact: Sequence[str] = ()) -> str:
    """The body as text fit for the XML parser: UTF-8, not HTML, no DTD (so no entity declarations)."""
    body = response.body
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    if not body.strip():
        raise malformed(response, what, "is empty", redact)
    ctype = (response.header("content-type") or "").lower()
    if "html" in ctype or body.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
        raise malformed(response, what, "is an HTML page (a proxy or sign-in page answered, not WS-Trust)", redact)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise malformed(response, what, "is not UTF-8 text", redact) from None
    if _DTD.search(text):
        raise malformed(response, what, "holds a DTD or entity declaration, which is refused", redact)
    return text


def parse_xml(text: str, response: HttpResponse, what: str, redact: Sequence[str] = ()) -> ET.Element:
    try:
        # xml_text refused any DTD, so no entity can be declared; a str ignores the declared encoding
        return ET.fromstring(text)  # noqa: S314
    except (ET.ParseError, RecursionError):
        raise malformed(response, what, "is not well-formed XML", redact) from None


def local_name(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


_XML_ESCAPES = str.maketrans({"&": "&amp;", '"': "&quot;", "'": "&apos;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


def xml_escape(text: str) -> str:
    """``text`` escaped for XML element content (``& " ' < >``, and ``\\r``, which a parser would turn into ``\\n``)."""
    return text.translate(_XML_ESCAPES)


# -- MEX ------------------------------------------------------------------------------------------


def _check_address(url: str, what: str) -> str:
    """``url`` when it is https (or http to a loopback host); the password goes there."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise FederationNotSupported(f"the {what} is not a valid URL") from None
    host = parts.hostname or ""
    if host and (parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host))):
        return url
    raise FederationNotSupported(f"the {what} is not an https URL; the password is sent only over https")


def mex_request(url: str) -> HttpRequest:
    """GET the federation metadata (MEX) document named by the user realm (no special headers, as MSAL).

    Raises:
        FederationNotSupported: the URL is not https (or http to a loopback host).
    """
    return HttpRequest(method="GET", url=_check_address(url, "federation metadata URL"))


def _policy_ids(root: ET.Element) -> set[str]:
    """``#Id`` of each top-level policy asking for a username token over a TLS transport (both dialects)."""
    routes = (
        ("sp", "SignedEncryptedSupportingTokens", ".//sp:TransportBinding"),
        ("sp2005", "SignedSupportingTokens", ".//sp2005:TransportBinding"),
    )
    ids: set[str] = set()
    for prefix, supporting, transport in routes:
        path = (
            f"wsp:ExactlyOne/wsp:All/{prefix}:{supporting}/wsp:Policy/"
            f"{prefix}:UsernameToken/wsp:Policy/{prefix}:WssUsernameToken10"
        )
        for policy in root.findall("wsp:Policy", NS):
            policy_id = policy.get(f"{{{NS['wsu']}}}Id")
            if policy_id and policy.find(path, NS) is not None and policy.find(transport, NS) is not None:
                ids.add(f"#{policy_id}")
    return ids


def _binding_actions(root: ET.Element, policy_ids: set[str]) -> dict[str, str]:
    """SOAP 1.2 over HTTP bindings under a username policy: binding name -> their Issue action."""
    actions: dict[str, str] = {}
    for binding in root.findall("wsdl:binding", NS):
        soap = binding.find("soap12:binding", NS)
        operation = binding.find("wsdl:operation/soap12:operation", NS)
        name = binding.get("name")
        if soap is None or soap.get("transport") != _SOAP_HTTP_TRANSPORT or operation is None or not name:
            continue
        references = {ref.get("URI") for ref in binding.findall("wsp:PolicyReference", NS)}
        if references & policy_ids:
            actions[name] = operation.get("soapAction") or ""
    return actions


def _endpoints(root: ET.Element) -> List[WsTrustEndpoint]:
    actions = _binding_actions(root, _policy_ids(root))
    found = []
    for port in root.findall("wsdl:service/wsdl:port", NS):
        action = actions.get((port.get("binding") or "").rpartition(":")[2])
        address = port.find("wsa:EndpointReference/wsa:Address", NS)
        if action not in _VERSION_BY_ACTION or address is None or not (address.text or "").strip():
            continue
        url = (address.text or "").strip()
        try:
            _check_address(url, "endpoint")
        except FederationNotSupported:
            continue  # MSAL skips endpoints that are not https
        found.append(WsTrustEndpoint(address=url, version=_VERSION_BY_ACTION[str(action)]))
    return found


def parse_mex(response: HttpResponse) -> WsTrustEndpoint:
    """The username/password endpoint of a MEX document: the first WS-Trust 1.3 one, else the first 2005 one.

    An endpoint counts when its port's binding is SOAP 1.2 over HTTP, references a policy asking
    for a ``WssUsernameToken10`` over a transport binding (WS-SecurityPolicy 1.2 or 2005/07), and
    its address is https (entra-protocol-2.md §4.2).

    Raises:
        MalformedFederationResponse: a non-2xx status, or a body that is not well-formed XML (or has a DTD).
        NoUsernamePasswordEndpoint: the document lists no such endpoint (as for Microsoft accounts).
    """
    what = "federation metadata (MEX)"
    if not 200 <= response.status < 300:
        raise malformed(response, what, "is an error, not the metadata document")
    root = parse_xml(xml_text(response, what), response, what)
    endpoints = _endpoints(root)
    for endpoint in endpoints:
        if endpoint.version == WSTRUST_13:
            return endpoint
    if endpoints:
        return endpoints[0]
    raise NoUsernamePasswordEndpoint(
        "the federation metadata lists no WS-Trust username/password (usernamemixed) endpoint; "
        "this typically happens for Microsoft (personal) accounts"
    )


def endpoint_for_address(url: str) -> WsTrustEndpoint:
    """The endpoint for a ``federation_active_auth_url`` (no MEX): its version read from its path.

    Raises:
        FederationNotSupported: not https, or a path naming neither ``trust/13`` nor ``trust/2005`` usernamemixed.
    """
    _check_address(url, "federation sign-in address")
    for marker, version in _VERSION_BY_PATH:
        if marker in url:
            return WsTrustEndpoint(address=url, version=version)
    raise FederationNotSupported("the federation sign-in address is not a WS-Trust usernamemixed endpoint")
