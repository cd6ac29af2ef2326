"""The stand-in AD FS: user realm answers, MEX, and the WS-Trust ``usernamemixed`` endpoints.

``GET /common/userrealm/<user>?api-version=1.0`` says how a user signs in: ``Federated`` (with the
MEX and active-auth URLs), ``Managed`` or ``Unknown`` (entra-protocol-2.md §4.1). The IdP lives
on the emulator's own origin: ``/adfs/services/trust/mex`` and
``/adfs/services/trust/{13,2005}/usernamemixed``. An RST (SOAP 1.2, or SOAP 1.1, answered in the
same version) with a ``UsernameToken`` for a user of a federated domain gets an RSTR carrying a
signed SAML 2.0 (WS-Trust 1.3) or SAML 1.1 (WS-Trust 2005) assertion; anything else gets an
AD FS-like SOAP fault with HTTP 500 (the fault codes and texts are WIF's; what AD FS sends for a
wrong password is unconfirmed, §8).
"""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Dict, Optional

from ..core.pkce import values_match
from .mex import ACTION_13, ACTION_2005, MEX_PATH, mex_document, usernamemixed_url
from .saml import AUDIENCE, LIFETIME, SAML1, SAML2, issue_assertion
from .service import Service
from .wire import Ctx, Request, Response
from .xmldsig import escape_text, parse_xml

__all__ = ["WsTrustFault", "fault_envelope", "userrealm_body", "wstrust_endpoint"]

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSP = "http://schemas.xmlsoap.org/ws/2004/09/policy"
TRUST_13 = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
TRUST_2005 = "http://schemas.xmlsoap.org/ws/2005/02/trust"
_WSS_PROFILE = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV"
_TOKEN_TYPES = {SAML1: SAML1, f"{_WSS_PROFILE}1.1": SAML1, SAML2: SAML2, f"{_WSS_PROFILE}2.0": SAML2}
_MAX_RST = 64 * 1024


@dataclass(frozen=True)
class _Version:
    trust: str
    action: str
    reply_action: str
    token_type: str
    key_type: str
    request_type: str


_VERSIONS = {
    "13": _Version(
        TRUST_13, ACTION_13, f"{TRUST_13}/RSTRC/IssueFinal", SAML2, f"{TRUST_13}/Bearer", f"{TRUST_13}/Issue"
    ),
    "2005": _Version(
        TRUST_2005,
        ACTION_2005,
        f"{TRUST_2005}/RSTR/Issue",
        SAML1,
        "http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey",
        f"{TRUST_2005}/Issue",
    ),
}


class WsTrustFault(Exception):
    """A SOAP fault to answer with: ``subcode`` (a WS-Security or WS-Trust QName) and the reason text."""

    def __init__(self, subcode: str, reason: str, *, namespace: str = WSSE, sender: bool = True) -> None:
        super().__init__(reason)
        self.subcode, self.reason, self.namespace, self.sender = subcode, reason, namespace, sender


def userrealm_body(svc: Service, origin: str, username: str) -> Dict[str, Any]:
    """The user realm answer for ``username`` (field order of the published sample)."""
    domain = username.rpartition("@")[2].lower()
    body: Dict[str, Any] = {"ver": "1.0"}
    if domain and domain in svc.config.federated_domains:
        body.update(
            {
                "account_type": "Federated",
                "domain_name": domain,
                "federation_protocol": "WSTrust",
                "federation_metadata_url": f"{origin}{MEX_PATH}",
                "federation_active_auth_url": usernamemixed_url(origin, "2005"),
            }
        )
    elif domain and domain == svc.config.domain:
        body.update({"account_type": "Managed", "domain_name": domain})
    else:
        body["account_type"] = "Unknown"
    body.update({"cloud_instance_name": "microsoftonline.com", "cloud_audience_urn": AUDIENCE})
    return body


def _stamp(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _xml(soap: str, body: str, status: int = 200) -> Response:
    kind = "application/soap+xml" if soap == SOAP12 else "text/xml"
    headers = (("Content-Type", f"{kind}; charset=utf-8"), ("Cache-Control", "no-cache"))
    return Response(status, headers, body.encode("utf-8"))


def fault_envelope(soap: str, fault: WsTrustFault, relates_to: Optional[str]) -> str:
    """A SOAP fault as WCF writes it for AD FS, in SOAP 1.2 or 1.1."""
    if soap == SOAP11:
        return (
            f'<s:Envelope xmlns:s="{SOAP11}"><s:Body><s:Fault><faultcode xmlns:a="{fault.namespace}">'
            f'{fault.subcode}</faultcode><faultstring xml:lang="en-US">{escape_text(fault.reason)}</faultstring>'
            "</s:Fault></s:Body></s:Envelope>"
        )
    related = f"<a:RelatesTo>{escape_text(relates_to)}</a:RelatesTo>" if relates_to else ""
    code = "s:Sender" if fault.sender else "s:Receiver"
    return (
        f'<s:Envelope xmlns:s="{SOAP12}" xmlns:a="{WSA}"><s:Header><a:Action s:mustUnderstand="1">'
        f"{WSA}/soap/fault</a:Action>{related}</s:Header><s:Body><s:Fault><s:Code><s:Value>{code}</s:Value>"
        f'<s:Subcode><s:Value xmlns:a="{fault.namespace}">{fault.subcode}</s:Value></s:Subcode></s:Code>'
        f'<s:Reason><s:Text xml:lang="en-US">{escape_text(fault.reason)}</s:Text></s:Reason></s:Fault></s:Body>'
        "</s:Envelope>"
    )


@dataclass(frozen=True)
class _Rst:
    soap: str
    message_id: Optional[str]
    username: str
    password: str
    token_type: str


def _envelope(body: bytes) -> ET.Element:
    if len(body) > _MAX_RST:
        raise WsTrustFault("wst:InvalidRequest", "The request is too large.", namespace=TRUST_13)
    try:
        root = parse_xml(body)
    except ValueError:
        raise WsTrustFault("wst:InvalidRequest", "The request is not a well-formed RST.", namespace=TRUST_13) from None
    if root.tag not in (f"{{{SOAP12}}}Envelope", f"{{{SOAP11}}}Envelope"):
        raise WsTrustFault("wst:InvalidRequest", "The request is not a SOAP envelope.", namespace=TRUST_13)
    return root


def _parse_rst(body: bytes, version: _Version) -> _Rst:
    root = _envelope(body)
    soap = root.tag[1:].split("}")[0]
    ns = {"s": soap, "a": WSA, "o": WSSE, "t": version.trust, "p": WSP}
    action = root.findtext("s:Header/a:Action", None, ns)
    if action is not None and action.strip() != version.action:
        raise WsTrustFault(
            "a:ActionNotSupported", f"The action '{action.strip()}' is not supported here.", namespace=WSA
        )
    token = root.find("s:Header/o:Security/o:UsernameToken", ns)
    rst = root.find("s:Body/t:RequestSecurityToken", ns)
    if rst is None:
        raise WsTrustFault(
            "wst:InvalidRequest",
            "The body holds no RequestSecurityToken of this WS-Trust version.",
            namespace=version.trust,
        )
    applies_to = rst.findtext("p:AppliesTo/a:EndpointReference/a:Address", None, ns)
    if (applies_to or "").strip() != AUDIENCE:
        raise WsTrustFault(
            "a:RequestFailed",
            "MSIS7007: The requested relying party trust is unspecified or unsupported.",
            sender=False,
        )
    if token is None:
        raise WsTrustFault("a:InvalidSecurity", "An error occurred when verifying security for the message.")
    asked = (rst.findtext("t:TokenType", None, ns) or "").strip()
    return _Rst(
        soap=soap,
        message_id=root.findtext("s:Header/a:MessageID", None, ns),
        username=(token.findtext("o:Username", "", ns) or "").strip(),
        password=token.findtext("o:Password", "", ns) or "",
        token_type=_TOKEN_TYPES.get(asked, version.token_type),
    )


def _rstr(version: _Version, rst: _Rst, assertion: str, now: float, lifetime: int) -> str:
    """The RSTR: SOAP envelope, WS-Addressing reply headers, the token, its type and lifetime."""
    t = "trust" if version.trust == TRUST_13 else "t"
    lifetime_xml = (
        f'<{t}:Lifetime><wsu:Created xmlns:wsu="{WSU}">{_stamp(now)}</wsu:Created>'
        f'<wsu:Expires xmlns:wsu="{WSU}">{_stamp(now + lifetime)}</wsu:Expires></{t}:Lifetime>'
    )
    applies_to = (
        f'<wsp:AppliesTo xmlns:wsp="{WSP}"><wsa:EndpointReference xmlns:wsa="{WSA}"><wsa:Address>{AUDIENCE}'
        "</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>"
    )
    declare = f' xmlns:{t}="{version.trust}"'
    inner = "" if version.trust == TRUST_13 else declare
    response = (
        f"<{t}:RequestSecurityTokenResponse{inner}>{lifetime_xml}{applies_to}"
        f"<{t}:RequestedSecurityToken>{assertion}</{t}:RequestedSecurityToken>"
        f"<{t}:TokenType>{rst.token_type}</{t}:TokenType><{t}:RequestType>{version.request_type}</{t}:RequestType>"
        f"<{t}:KeyType>{version.key_type}</{t}:KeyType></{t}:RequestSecurityTokenResponse>"
    )
    if version.trust == TRUST_13:
        collection = f"{t}:RequestSecurityTokenResponseCollection"
        response = f"<{collection}{declare}>{response}</{collection}>"
    related = f"<a:RelatesTo>{escape_text(rst.message_id)}</a:RelatesTo>" if rst.message_id else ""
    security = (
        f'<o:Security s:mustUnderstand="1" xmlns:o="{WSSE}"><u:Timestamp u:Id="_0"><u:Created>{_stamp(now)}'
        f"</u:Created><u:Expires>{_stamp(now + 300)}</u:Expires></u:Timestamp></o:Security>"
    )
    header = f'<s:Header><a:Action s:mustUnderstand="1">{version.reply_action}</a:Action>{related}{security}</s:Header>'
    return (
        f'<s:Envelope xmlns:s="{rst.soap}" xmlns:a="{WSA}" xmlns:u="{WSU}">{header}'
        f"<s:Body>{response}</s:Body></s:Envelope>"
    )


def _issue(svc: Service, version: _Version, rst: _Rst, now: float) -> str:
    user = svc.config.user(rst.username)
    if (
        user is None
        or not user.enabled
        or not svc.config.is_federated(user.username)
        or not values_match(user.password, rst.password)
    ):
        raise WsTrustFault(
            "a:FailedAuthentication", "ID3242: The security token could not be authenticated or authorized."
        )
    domain = user.username.rpartition("@")[2].lower()
    assertion_id, assertion = issue_assertion(
        rst.token_type, upn=user.username, object_id=user.object_id, domain=domain, now=now
    )
    with svc.store.lock:
        svc.store.assertions[assertion_id] = now + LIFETIME
    return _rstr(version, rst, assertion, now, LIFETIME)


def wstrust_endpoint(name: str, svc: Service, request: Request, ctx: Ctx, version: str) -> Response:
    """``mex`` (GET) or ``usernamemixed`` (POST an RST for WS-Trust ``version`` ``13`` or ``2005``)."""
    if name == "mex":
        if request.method not in ("GET", "HEAD"):
            return Response(405, (("Allow", "GET"), ("Content-Type", "text/plain; charset=utf-8")), b"")
        return _xml(SOAP12, mex_document(ctx.origin))
    spec = _VERSIONS.get(version)
    soap = SOAP11 if (request.header("content-type") or "").lower().startswith("text/xml") else SOAP12
    if spec is None or request.method != "POST":
        return Response(405, (("Allow", "POST"), ("Content-Type", "text/plain; charset=utf-8")), b"")
    rst: Optional[_Rst] = None
    try:
        rst = _parse_rst(request.body, spec)
        return _xml(rst.soap, _issue(svc, spec, rst, ctx.now))
    except WsTrustFault as fault:
        envelope = fault_envelope(rst.soap if rst else soap, fault, rst.message_id if rst else None)
        return _xml(rst.soap if rst else soap, envelope, status=500)
