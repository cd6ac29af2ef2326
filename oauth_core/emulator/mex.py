"""The stand-in AD FS's WS-MetadataExchange document (``GET /adfs/services/trust/mex``).

A WSDL with the two username/password policies AD FS publishes (WS-SecurityPolicy 1.2 for
WS-Trust 1.3, the 2005/07 namespace for WS-Trust 2005: a transport binding plus a
``WssUsernameToken10`` supporting token), one SOAP 1.2 binding per policy with its ``soapAction``,
and the ``usernamemixed`` ports at ``{origin}/adfs/services/trust/{13,2005}/usernamemixed``
(entra-protocol-2.md §4.2).
"""

from __future__ import annotations

from typing import Tuple

from .xmldsig import escape_attr, escape_text

__all__ = ["ACTION_13", "ACTION_2005", "MEX_PATH", "mex_document", "usernamemixed_url"]

ACTION_13 = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue"
ACTION_2005 = "http://schemas.xmlsoap.org/ws/2005/02/trust/RST/Issue"
MEX_PATH = "/adfs/services/trust/mex"
_NAMESPACES = (
    ("wsdl", "http://schemas.xmlsoap.org/wsdl/"),
    ("soap12", "http://schemas.xmlsoap.org/wsdl/soap12/"),
    ("wsu", "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"),
    ("wsp", "http://schemas.xmlsoap.org/ws/2004/09/policy"),
    ("sp", "http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702"),
    ("sp2005", "http://schemas.xmlsoap.org/ws/2005/07/securitypolicy"),
    ("wsaw", "http://www.w3.org/2006/05/addressing/wsdl"),
    ("wsa10", "http://www.w3.org/2005/08/addressing"),
    ("tns", "http://schemas.microsoft.com/ws/2008/06/identity/securitytokenservice"),
)
# (binding name, policy id, soap action, path, security-policy prefix, supporting-tokens element)
_ENDPOINTS: Tuple[Tuple[str, str, str, str, str, str], ...] = (
    ("UserNameWSTrustBinding_IWSTrust13Async", "UserNameWSTrustBinding_IWSTrust13Async_policy", ACTION_13,
     "13", "sp", "SignedEncryptedSupportingTokens"),
    ("UserNameWSTrustBinding_IWSTrustFeb2005Async", "UserNameWSTrustBinding_IWSTrustFeb2005Async_policy",
     ACTION_2005, "2005", "sp2005", "SignedSupportingTokens"),
)  # fmt: skip


def usernamemixed_url(origin: str, version: str) -> str:
    """The WS-Trust ``usernamemixed`` endpoint (``version`` ``13`` or ``2005``) on ``origin``."""
    return f"{origin}/adfs/services/trust/{version}/usernamemixed"


def _policy(policy_id: str, sp: str, supporting: str) -> str:
    include = (
        "http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702/IncludeToken/AlwaysToRecipient"
        if sp == "sp"
        else "http://schemas.xmlsoap.org/ws/2005/07/securitypolicy/IncludeToken/AlwaysToRecipient"
    )
    transport = (
        f"<{sp}:TransportBinding><wsp:Policy><{sp}:TransportToken><wsp:Policy><{sp}:HttpsToken/></wsp:Policy>"
        f"</{sp}:TransportToken><{sp}:AlgorithmSuite><wsp:Policy><{sp}:Basic256/></wsp:Policy></{sp}:AlgorithmSuite>"
        f"<{sp}:Layout><wsp:Policy><{sp}:Strict/></wsp:Policy></{sp}:Layout><{sp}:IncludeTimestamp/></wsp:Policy>"
        f"</{sp}:TransportBinding>"
    )
    tokens = (
        f'<{sp}:{supporting}><wsp:Policy><{sp}:UsernameToken {sp}:IncludeToken="{include}"><wsp:Policy>'
        f"<{sp}:WssUsernameToken10/></wsp:Policy></{sp}:UsernameToken></wsp:Policy></{sp}:{supporting}>"
    )
    return (
        f'<wsp:Policy wsu:Id="{policy_id}"><wsp:ExactlyOne><wsp:All>{transport}{tokens}'
        "<wsaw:UsingAddressing/></wsp:All></wsp:ExactlyOne></wsp:Policy>"
    )


def _binding(name: str, policy_id: str, action: str) -> str:
    port_type = name.split("_", 1)[1]
    return (
        f'<wsdl:binding name="{name}" type="tns:{port_type}"><wsp:PolicyReference URI="#{policy_id}"/>'
        '<soap12:binding transport="http://schemas.xmlsoap.org/soap/http"/>'
        f'<wsdl:operation name="{port_type}Issue"><soap12:operation soapAction="{action}" style="document"/>'
        '<wsdl:input><soap12:body use="literal"/></wsdl:input><wsdl:output><soap12:body use="literal"/>'
        "</wsdl:output></wsdl:operation></wsdl:binding>"
    )


def _port(name: str, address: str) -> str:
    return (
        f'<wsdl:port name="{name}" binding="tns:{name}"><soap12:address location="{escape_attr(address)}"/>'
        f"<wsa10:EndpointReference><wsa10:Address>{escape_text(address)}</wsa10:Address>"
        "</wsa10:EndpointReference></wsdl:port>"
    )


def mex_document(origin: str) -> str:
    """The MEX document of the stand-in AD FS reachable at ``origin``."""
    declarations = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in _NAMESPACES)
    policies = "".join(_policy(pid, sp, supporting) for _, pid, _, _, sp, supporting in _ENDPOINTS)
    bindings = "".join(_binding(name, pid, action) for name, pid, action, *_ in _ENDPOINTS)
    ports = "".join(_port(name, usernamemixed_url(origin, path)) for name, _, _, path, *_ in _ENDPOINTS)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<wsdl:definitions name="SecurityTokenService" targetNamespace="{_NAMESPACES[-1][1]}" {declarations}>'
        f'{policies}{bindings}<wsdl:service name="SecurityTokenService">{ports}</wsdl:service></wsdl:definitions>'
    )
