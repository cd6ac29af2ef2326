"""Federated users in the password grant (WS-Trust), sans-I/O: the user realm, an AD FS-like MEX
document, RSTs parsed back, RSTRs of both versions, SOAP faults, hostile XML, and the whole flow
stepped by hand. No password may show in any repr, str or error.
"""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl

import pytest
from fixturelib import CLIENT_ID, TENANT_ID, token_response_body

from oauth_core.core.authority import Authority
from oauth_core.core.effects import advance, start
from oauth_core.core.errors import ConfigError, InvalidGrant, OAuthCoreError, ResponseFormatError, TransportError
from oauth_core.core.grants import build_token_request
from oauth_core.core.messages import HttpRequest, HttpResponse, Pairs, TokenSet, encode_form
from oauth_core.core.wstrust import (
    DEFAULT_CLOUD_AUDIENCE_URN,
    SAML1_1_BEARER_GRANT,
    SAML2_BEARER_GRANT,
    SAML_1_1_TOKEN_TYPE,
    SAML_2_0_TOKEN_TYPE,
    WSTRUST_13,
    WSTRUST_2005,
    SamlAssertion,
    UserRealm,
    WsTrustEndpoint,
    endpoint_for_address,
    federated_password_flow,
    mex_request,
    parse_mex,
    parse_rstr,
    parse_user_realm,
    rst_request,
    saml_grant,
    user_realm_request,
)
from oauth_core.core.wstrust_errors import (
    FederatedSignInFailed,
    FederationError,
    FederationNotSupported,
    MalformedFederationResponse,
    NoUsernamePasswordEndpoint,
    UserRealmLookupFailed,
)

AUTHORITY = Authority.of("https://login.microsoftonline.com", TENANT_ID)
USER = "carol@fabrikam.example"
PASSWORD = "s3cr&t<pa\"ss>'wörd"  # every character XML escapes, and one outside ASCII
FS = "https://fs.fabrikam.example/adfs/services/trust"
MEX_URL = f"{FS}/mex"
NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z
MESSAGE_ID = "0c5f0c7e-4c0a-4a41-9a53-3d3b3bb0d0f1"

S12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSP = "http://schemas.xmlsoap.org/ws/2004/09/policy"
WST13 = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
WST2005 = "http://schemas.xmlsoap.org/ws/2005/02/trust"
ACTION_13 = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue"
ACTION_2005 = "http://schemas.xmlsoap.org/ws/2005/02/trust/RST/Issue"


def json_response(body: Dict[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(
        status=status, headers=(("content-type", "application/json; charset=utf-8"),), body=json.dumps(body).encode()
    )


def xml_response(text: str, status: int = 200, ctype: str = "application/soap+xml; charset=utf-8") -> HttpResponse:
    return HttpResponse(status=status, headers=(("content-type", ctype),), body=text.encode("utf-8"))


# -- user realm ----------------------------------------------------------------------------------

FEDERATED_REALM = {
    "ver": "1.0",
    "account_type": "Federated",
    "domain_name": "fabrikam.example",
    "federation_protocol": "WSTrust",
    "federation_metadata_url": MEX_URL,
    "federation_active_auth_url": f"{FS}/2005/usernamemixed",
    "cloud_instance_name": "microsoftonline.com",
    "cloud_audience_urn": "urn:federation:MicrosoftOnline",
}
MANAGED_REALM = {
    "ver": "1.0",
    "account_type": "Managed",
    "domain_name": "contoso.example",
    "cloud_instance_name": "microsoftonline.com",
    "cloud_audience_urn": "urn:federation:MicrosoftOnline",
}


def test_user_realm_request_is_a_get_to_common() -> None:
    request = user_realm_request(AUTHORITY, USER, (("client-request-id", "abc"),))
    assert request.method == "GET"
    assert request.url == "https://login.microsoftonline.com/common/userrealm/carol@fabrikam.example?api-version=1.0"
    assert dict(request.headers) == {"accept": "application/json", "client-request-id": "abc"}
    assert request.body == b""
    odd = user_realm_request(AUTHORITY, "a/b?c#d@x.example")
    assert "/common/userrealm/a%2Fb%3Fc%23d@x.example?api-version=1.0" in odd.url
    with pytest.raises(ConfigError):
        user_realm_request(AUTHORITY, " ")


def test_federated_realm() -> None:
    realm = parse_user_realm(json_response(FEDERATED_REALM))
    assert realm == UserRealm(
        account_type="Federated",
        federation_protocol="WSTrust",
        federation_metadata_url=MEX_URL,
        federation_active_auth_url=f"{FS}/2005/usernamemixed",
        cloud_audience_urn="urn:federation:MicrosoftOnline",
        domain_name="fabrikam.example",
    )
    assert realm.is_federated


@pytest.mark.parametrize(
    ("body", "account_type"),
    [
        (MANAGED_REALM, "Managed"),
        ({"ver": "1.0", "account_type": "Unknown", "cloud_instance_name": "microsoftonline.com"}, "Unknown"),
        ({**FEDERATED_REALM, "account_type": "federated"}, "Federated"),  # MSAL.NET / Java compare loosely
        ({"ver": "1.0", "account_type": "Something"}, "Unknown"),
        ({"ver": "1.0", "account_type": 3}, "Unknown"),
        ({"ver": "1.0"}, "Unknown"),
    ],
)
def test_account_types(body: Dict[str, Any], account_type: str) -> None:
    realm = parse_user_realm(json_response(body))
    assert realm.account_type == account_type
    assert realm.cloud_audience_urn == DEFAULT_CLOUD_AUDIENCE_URN


def test_a_404_means_no_realm_discovery() -> None:
    realm = parse_user_realm(json_response({"error": "not_found"}, status=404))
    assert realm == UserRealm(account_type="Unknown")


@pytest.mark.parametrize(
    "response",
    [
        json_response({"error": "invalid_request", "error_description": "AADSTS90002: nope"}, status=400),
        HttpResponse(status=403, body=b"Forbidden"),
        HttpResponse(status=302, headers=(("location", "https://portal.example/"),)),
        HttpResponse(status=200, headers=(("content-type", "text/html"),), body=b"<html><title>Wi-Fi</title></html>"),
        HttpResponse(status=200, body=b"[1, 2]"),
        HttpResponse(status=200, body=b""),
    ],
)
def test_realm_lookup_failures(response: HttpResponse) -> None:
    with pytest.raises(UserRealmLookupFailed) as caught:
        parse_user_realm(response)
    assert caught.value.status == response.status
    assert isinstance(caught.value, ResponseFormatError) and isinstance(caught.value, FederationError)


# -- MEX ------------------------------------------------------------------------------------------

MEX_NAMESPACES = (
    'xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" '
    'xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/" '
    'xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" '
    'xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" '
    'xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy" '
    'xmlns:wsa10="http://www.w3.org/2005/08/addressing" '
    'xmlns:wsaw="http://www.w3.org/2006/05/addressing/wsdl" '
    'xmlns:tns="http://schemas.microsoft.com/ws/2008/06/identity/securitytokenservice" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
)

POLICY_2005_USERNAME = """
  <wsp:Policy wsu:Id="UserNameWSTrustBinding_IWSTrustFeb2005Async_policy">
    <wsp:ExactlyOne>
      <wsp:All>
        <sp:TransportBinding xmlns:sp="http://schemas.xmlsoap.org/ws/2005/07/securitypolicy">
          <wsp:Policy>
            <sp:TransportToken>
              <wsp:Policy><sp:HttpsToken RequireClientCertificate="false"/></wsp:Policy>
            </sp:TransportToken>
            <sp:AlgorithmSuite><wsp:Policy><sp:Basic256/></wsp:Policy></sp:AlgorithmSuite>
            <sp:Layout><wsp:Policy><sp:Strict/></wsp:Policy></sp:Layout>
            <sp:IncludeTimestamp/>
          </wsp:Policy>
        </sp:TransportBinding>
        <sp:SignedSupportingTokens xmlns:sp="http://schemas.xmlsoap.org/ws/2005/07/securitypolicy">
          <wsp:Policy>
            <sp:UsernameToken sp:IncludeToken="http://schemas.xmlsoap.org/ws/2005/07/securitypolicy/IncludeToken/AlwaysToRecipient">
              <wsp:Policy><sp:WssUsernameToken10/></wsp:Policy>
            </sp:UsernameToken>
          </wsp:Policy>
        </sp:SignedSupportingTokens>
        <sp:Wss11 xmlns:sp="http://schemas.xmlsoap.org/ws/2005/07/securitypolicy"><wsp:Policy/></sp:Wss11>
        <sp:Trust10 xmlns:sp="http://schemas.xmlsoap.org/ws/2005/07/securitypolicy">
          <wsp:Policy><sp:MustSupportIssuedTokens/><sp:RequireClientEntropy/><sp:RequireServerEntropy/></wsp:Policy>
        </sp:Trust10>
        <wsaw:UsingAddressing wsp:Optional="true"/>
      </wsp:All>
    </wsp:ExactlyOne>
  </wsp:Policy>"""

POLICY_13_USERNAME = """
  <wsp:Policy wsu:Id="UserNameWSTrustBinding_IWSTrust13Async_policy">
    <wsp:ExactlyOne>
      <wsp:All>
        <sp:TransportBinding xmlns:sp="http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702">
          <wsp:Policy>
            <sp:TransportToken><wsp:Policy><sp:HttpsToken/></wsp:Policy></sp:TransportToken>
            <sp:AlgorithmSuite><wsp:Policy><sp:Basic256/></wsp:Policy></sp:AlgorithmSuite>
            <sp:Layout><wsp:Policy><sp:Strict/></wsp:Policy></sp:Layout>
            <sp:IncludeTimestamp/>
          </wsp:Policy>
        </sp:TransportBinding>
        <sp:SignedEncryptedSupportingTokens xmlns:sp="http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702">
          <wsp:Policy>
            <sp:UsernameToken sp:IncludeToken="http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702/IncludeToken/AlwaysToRecipient">
              <wsp:Policy><sp:WssUsernameToken10/></wsp:Policy>
            </sp:UsernameToken>
          </wsp:Policy>
        </sp:SignedEncryptedSupportingTokens>
        <sp:Wss11 xmlns:sp="http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702"><wsp:Policy/></sp:Wss11>
        <sp:Trust13 xmlns:sp="http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702">
          <wsp:Policy><sp:MustSupportIssuedTokens/><sp:RequireClientEntropy/><sp:RequireServerEntropy/></wsp:Policy>
        </sp:Trust13>
        <wsaw:UsingAddressing/>
      </wsp:All>
    </wsp:ExactlyOne>
  </wsp:Policy>"""

POLICY_WINDOWS = """
  <wsp:Policy wsu:Id="WindowsWSTrustBinding_IWSTrust13Async_policy">
    <wsp:ExactlyOne>
      <wsp:All>
        <http:NegotiateAuthentication xmlns:http="http://schemas.microsoft.com/ws/06/2004/policy/http"/>
        <sp:TransportBinding xmlns:sp="http://schemas.xmlsoap.org/ws/2005/07/securitypolicy">
          <wsp:Policy><sp:TransportToken><wsp:Policy><sp:HttpsToken/></wsp:Policy></sp:TransportToken></wsp:Policy>
        </sp:TransportBinding>
      </wsp:All>
    </wsp:ExactlyOne>
  </wsp:Policy>"""


def binding(name: str, policy: str, action: str, soap: str = "soap12") -> str:
    return f"""
  <wsdl:binding name="{name}" type="tns:IWSTrust">
    <wsp:PolicyReference URI="#{policy}"/>
    <{soap}:binding transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="Issue">
      <{soap}:operation soapAction="{action}" style="document"/>
      <wsdl:input><{soap}:body use="literal"/></wsdl:input>
      <wsdl:output><{soap}:body use="literal"/></wsdl:output>
    </wsdl:operation>
  </wsdl:binding>"""


def port(name: str, address: str) -> str:
    return f"""
    <wsdl:port name="{name}" binding="tns:{name}">
      <soap12:address location="{address}"/>
      <wsa10:EndpointReference>
        <wsa10:Address>{address}</wsa10:Address>
        <Identity xmlns="http://schemas.xmlsoap.org/ws/2006/02/addressingidentity"><Upn>adfs@fabrikam.example</Upn></Identity>
      </wsa10:EndpointReference>
    </wsdl:port>"""


def mex(policies: str, bindings: str, ports: str) -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<wsdl:definitions name="SecurityTokenService"
    targetNamespace="http://schemas.microsoft.com/ws/2008/06/identity/securitytokenservice"
    {MEX_NAMESPACES}>{policies}
  <wsdl:types><xsd:schema targetNamespace="http://schemas.microsoft.com/Imports"/></wsdl:types>{bindings}
  <wsdl:service name="SecurityTokenService">{ports}
  </wsdl:service>
</wsdl:definitions>"""


# As AD FS lists them: Windows, then the 2005 username endpoint, then the 1.3 one. Every binding is SOAP 1.2
# (MSAL's parser fails on a binding without soap12:binding).
ADFS_MEX = mex(
    POLICY_WINDOWS + POLICY_2005_USERNAME + POLICY_13_USERNAME,
    binding("WindowsWSTrustBinding_IWSTrust13Async", "WindowsWSTrustBinding_IWSTrust13Async_policy", ACTION_13)
    + binding(
        "UserNameWSTrustBinding_IWSTrustFeb2005Async", "UserNameWSTrustBinding_IWSTrustFeb2005Async_policy", ACTION_2005
    )
    + binding("UserNameWSTrustBinding_IWSTrust13Async", "UserNameWSTrustBinding_IWSTrust13Async_policy", ACTION_13),
    port("WindowsWSTrustBinding_IWSTrust13Async", f"{FS}/13/windowstransport")
    + port("UserNameWSTrustBinding_IWSTrustFeb2005Async", f"{FS}/2005/usernamemixed")
    + port("UserNameWSTrustBinding_IWSTrust13Async", f"{FS}/13/usernamemixed"),
)


def test_mex_request() -> None:
    request = mex_request(MEX_URL)
    assert (request.method, request.url, request.headers, request.body) == ("GET", MEX_URL, (), b"")
    assert mex_request("http://127.0.0.1:8400/mex").url == "http://127.0.0.1:8400/mex"  # a local emulator
    for bad in ("http://fs.fabrikam.example/mex", "ftp://fs.fabrikam.example/mex", "https:///mex"):
        with pytest.raises(FederationNotSupported):
            mex_request(bad)


def test_mex_prefers_ws_trust_13() -> None:
    endpoint = parse_mex(xml_response(ADFS_MEX, ctype="application/soap+xml"))
    assert endpoint == WsTrustEndpoint(address=f"{FS}/13/usernamemixed", version=WSTRUST_13)
    assert endpoint.action == ACTION_13


def test_mex_falls_back_to_2005() -> None:
    only_2005 = mex(
        POLICY_WINDOWS + POLICY_2005_USERNAME,
        binding(
            "UserNameWSTrustBinding_IWSTrustFeb2005Async",
            "UserNameWSTrustBinding_IWSTrustFeb2005Async_policy",
            ACTION_2005,
        ),
        port("UserNameWSTrustBinding_IWSTrustFeb2005Async", f"{FS}/2005/usernamemixed"),
    )
    endpoint = parse_mex(xml_response(only_2005))
    assert endpoint == WsTrustEndpoint(address=f"{FS}/2005/usernamemixed", version=WSTRUST_2005)
    assert endpoint.action == ACTION_2005


@pytest.mark.parametrize(
    "document",
    [
        # only Windows integrated auth
        mex(
            POLICY_WINDOWS,
            binding("WindowsWSTrustBinding_IWSTrust13Async", "WindowsWSTrustBinding_IWSTrust13Async_policy", ACTION_13),
            port("WindowsWSTrustBinding_IWSTrust13Async", f"{FS}/13/windowstransport"),
        ),
        # a username endpoint over plain http
        mex(
            POLICY_13_USERNAME,
            binding(
                "UserNameWSTrustBinding_IWSTrust13Async", "UserNameWSTrustBinding_IWSTrust13Async_policy", ACTION_13
            ),
            port(
                "UserNameWSTrustBinding_IWSTrust13Async",
                "http://fs.fabrikam.example/adfs/services/trust/13/usernamemixed",
            ),
        ),
        # a username policy whose binding is SOAP 1.1 only
        mex(
            POLICY_13_USERNAME,
            binding("B", "UserNameWSTrustBinding_IWSTrust13Async_policy", ACTION_13, soap="soap"),
            port("B", f"{FS}/13/usernamemixed"),
        ),
        # an action that is neither WS-Trust 1.3 nor 2005
        mex(
            POLICY_13_USERNAME,
            binding("B", "UserNameWSTrustBinding_IWSTrust13Async_policy", "urn:something:else"),
            port("B", f"{FS}/13/usernamemixed"),
        ),
        mex("", "", ""),
    ],
)
def test_mex_without_a_username_endpoint(document: str) -> None:
    with pytest.raises(NoUsernamePasswordEndpoint) as caught:
        parse_mex(xml_response(document))
    assert isinstance(caught.value, FederationNotSupported)


@pytest.mark.parametrize(
    "response",
    [
        HttpResponse(status=404, body=b"Not Found"),
        xml_response("<wsdl:definitions", status=200),
        xml_response("not xml at all"),
        HttpResponse(status=200, headers=(("content-type", "text/html"),), body=b"<html><body>Sign in</body></html>"),
    ],
)
def test_mex_that_is_not_a_mex(response: HttpResponse) -> None:
    with pytest.raises(MalformedFederationResponse):
        parse_mex(response)


def test_endpoint_for_an_active_auth_url() -> None:
    assert endpoint_for_address(f"{FS}/2005/usernamemixed").version == WSTRUST_2005
    assert endpoint_for_address(f"{FS}/13/usernamemixed").version == WSTRUST_13
    with pytest.raises(FederationNotSupported):
        endpoint_for_address(f"{FS}/13/windowstransport")
    with pytest.raises(FederationNotSupported):
        endpoint_for_address("http://fs.fabrikam.example/adfs/services/trust/13/usernamemixed")


# -- RST ------------------------------------------------------------------------------------------


def built_rst(version: str, password: str = PASSWORD) -> Tuple[HttpRequest, ET.Element]:
    endpoint = WsTrustEndpoint(
        address=f"{FS}/{'13' if version == WSTRUST_13 else '2005'}/usernamemixed", version=version
    )
    request = rst_request(endpoint, USER, password, "urn:federation:MicrosoftOnline", now=NOW, message_id=MESSAGE_ID)
    return request, ET.fromstring(request.body)


@pytest.mark.parametrize(
    ("version", "wst", "action", "key_type", "request_type"),
    [
        (WSTRUST_13, WST13, ACTION_13, f"{WST13}/Bearer", f"{WST13}/Issue"),
        (
            WSTRUST_2005,
            WST2005,
            ACTION_2005,
            "http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey",
            f"{WST2005}/Issue",
        ),
    ],
)
def test_rst_parses_back(version: str, wst: str, action: str, key_type: str, request_type: str) -> None:
    request, root = built_rst(version)
    assert request.method == "POST" and request.url.endswith("/usernamemixed")
    assert dict(request.headers) == {"content-type": "application/soap+xml; charset=utf-8", "soapaction": action}
    assert request.form == ()
    ns = {"s": S12, "wsa": WSA, "wsu": WSU, "wsse": WSSE, "wsp": WSP, "wst": wst}
    assert root.tag == f"{{{S12}}}Envelope"
    header = root.find("s:Header", ns)
    assert header is not None
    action_element = header.find("wsa:Action", ns)
    assert action_element is not None and action_element.text == action
    assert action_element.get(f"{{{S12}}}mustUnderstand") == "1"
    assert header.findtext("wsa:MessageID", None, ns) == f"urn:uuid:{MESSAGE_ID}"
    assert header.findtext("wsa:ReplyTo/wsa:Address", None, ns) == "http://www.w3.org/2005/08/addressing/anonymous"
    assert header.findtext("wsa:To", None, ns) == request.url
    security = header.find("wsse:Security", ns)
    assert security is not None and security.get(f"{{{S12}}}mustUnderstand") == "1"
    assert security.findtext("wsu:Timestamp/wsu:Created", None, ns) == "2025-06-15T15:06:40Z"
    assert security.findtext("wsu:Timestamp/wsu:Expires", None, ns) == "2025-06-15T15:16:40Z"
    assert security.findtext("wsse:UsernameToken/wsse:Username", None, ns) == USER
    password = security.find("wsse:UsernameToken/wsse:Password", ns)
    assert password is not None and password.text == PASSWORD and password.attrib == {}
    rst = root.find("s:Body/wst:RequestSecurityToken", ns)
    assert rst is not None
    assert rst.findtext("wsp:AppliesTo/wsa:EndpointReference/wsa:Address", None, ns) == "urn:federation:MicrosoftOnline"
    assert rst.findtext("wst:KeyType", None, ns) == key_type
    assert rst.findtext("wst:RequestType", None, ns) == request_type
    assert rst.find("wst:TokenType", ns) is None


def test_rst_escapes_the_credentials() -> None:
    request, _ = built_rst(WSTRUST_13)
    body = request.body.decode("utf-8")
    assert "<wsse:Password>s3cr&amp;t&lt;pa&quot;ss&gt;&apos;wörd</wsse:Password>" in body
    assert PASSWORD not in body


def test_rst_keeps_whitespace_of_a_password() -> None:
    odd = " a\tb\r\nc "
    _, root = built_rst(WSTRUST_2005, password=odd)
    text = root.findtext(f".//{{{WSSE}}}Password")
    assert text == odd  # a literal \r would come back as \n


@pytest.mark.parametrize("password", ["", "nul\x00", "bell\x07", "esc\x1b[0m"])
def test_rst_refuses_what_xml_cannot_carry(password: str) -> None:
    with pytest.raises(ConfigError) as caught:
        built_rst(WSTRUST_13, password=password)
    if password:
        assert password not in str(caught.value)


def test_rst_repr_hides_the_password() -> None:
    request, _ = built_rst(WSTRUST_13)
    for shown in (repr(request), str(request)):
        assert PASSWORD not in shown and "s3cr" not in shown
        assert f"[{len(request.body)} bytes]" in shown


def test_form_requests_keep_their_body_and_repr() -> None:
    request = build_token_request(
        AUTHORITY, CLIENT_ID, (("grant_type", "password"), ("password", "pw")), scopes=("openid",)
    )
    assert request.content == b""
    assert request.body == encode_form(request.form).encode("ascii")
    assert "password='<redacted>'" in repr(request)  # as before content= existed


# -- RSTR -----------------------------------------------------------------------------------------

SAML11_ASSERTION = (
    '<saml:Assertion MajorVersion="1" MinorVersion="1" AssertionID="_7e9c6b2e-0c8e-4b9d-9a1f-2c6a1d3b4e5f" '
    'Issuer="http://fs.fabrikam.example/adfs/services/trust" IssueInstant="2025-06-15T15:06:41.123Z" '
    'xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion">'
    '<saml:Conditions NotBefore="2025-06-15T15:06:41.123Z" NotOnOrAfter="2025-06-15T16:06:41.123Z">'
    "<saml:AudienceRestrictionCondition><saml:Audience>urn:federation:MicrosoftOnline</saml:Audience>"
    "</saml:AudienceRestrictionCondition></saml:Conditions>"
    "<saml:AttributeStatement><saml:Subject>"
    '<saml:NameIdentifier Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">'
    "AbCdEf0123456789==</saml:NameIdentifier><saml:SubjectConfirmation><saml:ConfirmationMethod>"
    "urn:oasis:names:tc:SAML:1.0:cm:bearer</saml:ConfirmationMethod></saml:SubjectConfirmation></saml:Subject>"
    '<saml:Attribute AttributeName="UPN" AttributeNamespace="http://schemas.xmlsoap.org/claims">'
    "<saml:AttributeValue>carol@fabrikam.example</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>"
    '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
    '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
    '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
    '<ds:Reference URI="#_7e9c6b2e-0c8e-4b9d-9a1f-2c6a1d3b4e5f"><ds:DigestValue>q1w2e3r4t5y6u7i8o9p0=</ds:DigestValue>'
    "</ds:Reference></ds:SignedInfo><ds:SignatureValue>c2lnbmF0dXJl</ds:SignatureValue></ds:Signature>"
    "</saml:Assertion>"
)
SAML20_ASSERTION = (
    '<Assertion ID="_d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6" IssueInstant="2025-06-15T15:06:41.123Z" Version="2.0" '
    'xmlns="urn:oasis:names:tc:SAML:2.0:assertion"><Issuer>http://fs.fabrikam.example/adfs/services/trust</Issuer>'
    "<Subject><NameID>carol@fabrikam.example</NameID>"
    '<SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"/></Subject>'
    '<Conditions NotBefore="2025-06-15T15:06:41.123Z" NotOnOrAfter="2025-06-15T16:06:41.123Z">'
    "<AudienceRestriction><Audience>urn:federation:MicrosoftOnline</Audience></AudienceRestriction></Conditions>"
    "</Assertion>"
)


def rstr_13(assertion: str, token_type: str) -> str:
    return f"""<s:Envelope xmlns:s="{S12}" xmlns:a="{WSA}" xmlns:u="{WSU}">
<s:Header><a:Action s:mustUnderstand="1">http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTRC/IssueFinal</a:Action>
<o:Security s:mustUnderstand="1" xmlns:o="{WSSE}"><u:Timestamp u:Id="_0"><u:Created>2025-06-15T15:06:41.123Z</u:Created>
<u:Expires>2025-06-15T15:11:41.123Z</u:Expires></u:Timestamp></o:Security></s:Header>
<s:Body><trust:RequestSecurityTokenResponseCollection xmlns:trust="{WST13}">
<trust:RequestSecurityTokenResponse>
<trust:Lifetime><wsu:Created xmlns:wsu="{WSU}">2025-06-15T15:06:41.123Z</wsu:Created>
<wsu:Expires xmlns:wsu="{WSU}">2025-06-15T16:06:41.123Z</wsu:Expires></trust:Lifetime>
<wsp:AppliesTo xmlns:wsp="{WSP}"><wsa:EndpointReference xmlns:wsa="{WSA}">
<wsa:Address>urn:federation:MicrosoftOnline</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>
<trust:RequestedSecurityToken>
  {assertion}
</trust:RequestedSecurityToken>
<trust:RequestedAttachedReference><o:SecurityTokenReference xmlns:o="{WSSE}"/></trust:RequestedAttachedReference>
<trust:TokenType>{token_type}</trust:TokenType>
<trust:RequestType>{WST13}/Issue</trust:RequestType>
<trust:KeyType>{WST13}/Bearer</trust:KeyType>
</trust:RequestSecurityTokenResponse>
</trust:RequestSecurityTokenResponseCollection></s:Body></s:Envelope>"""


def rstr_2005(assertion: str, token_type: str) -> str:
    return f"""<s:Envelope xmlns:s="{S12}" xmlns:a="{WSA}" xmlns:u="{WSU}">
<s:Header><a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/02/trust/RSTR/Issue</a:Action></s:Header>
<s:Body><t:RequestSecurityTokenResponse xmlns:t="{WST2005}">
<t:Lifetime><wsu:Created xmlns:wsu="{WSU}">2025-06-15T15:06:41.123Z</wsu:Created></t:Lifetime>
<t:RequestedSecurityToken>{assertion}</t:RequestedSecurityToken>
<t:TokenType>{token_type}</t:TokenType>
<t:RequestType>http://schemas.xmlsoap.org/ws/2005/02/trust/Issue</t:RequestType>
<t:KeyType>http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey</t:KeyType>
</t:RequestSecurityTokenResponse></s:Body></s:Envelope>"""


@pytest.mark.parametrize(
    ("body", "assertion", "token_type", "grant_type"),
    [
        (rstr_13(SAML11_ASSERTION, SAML_1_1_TOKEN_TYPE), SAML11_ASSERTION, SAML_1_1_TOKEN_TYPE, SAML1_1_BEARER_GRANT),
        (rstr_13(SAML20_ASSERTION, SAML_2_0_TOKEN_TYPE), SAML20_ASSERTION, SAML_2_0_TOKEN_TYPE, SAML2_BEARER_GRANT),
        (rstr_2005(SAML11_ASSERTION, SAML_1_1_TOKEN_TYPE), SAML11_ASSERTION, SAML_1_1_TOKEN_TYPE, SAML1_1_BEARER_GRANT),
        (rstr_2005(SAML20_ASSERTION, SAML_2_0_TOKEN_TYPE), SAML20_ASSERTION, SAML_2_0_TOKEN_TYPE, SAML2_BEARER_GRANT),
        (
            rstr_13(SAML11_ASSERTION, "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1"),
            SAML11_ASSERTION,
            "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1",
            SAML1_1_BEARER_GRANT,
        ),
        (
            rstr_2005(SAML20_ASSERTION, "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"),
            SAML20_ASSERTION,
            "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0",
            SAML2_BEARER_GRANT,
        ),
    ],
)
def test_rstr_assertion_is_cut_out_as_sent(body: str, assertion: str, token_type: str, grant_type: str) -> None:
    saml = parse_rstr(xml_response(body))
    assert saml.assertion == assertion.encode("utf-8")  # byte for byte: the signature still holds
    assert saml.token_type == token_type and saml.grant_type == grant_type
    assert "carol" not in repr(saml) and f"{len(saml.assertion)} bytes" in str(saml)
    grant = saml_grant(saml)
    assert dict(grant)["grant_type"] == grant_type
    encoded = dict(grant)["assertion"]
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded
    assert base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)) == assertion.encode("utf-8")


def test_rstr_status_is_not_relied_on_and_a_bom_is_allowed() -> None:
    body = b"\xef\xbb\xbf" + rstr_13(SAML11_ASSERTION, SAML_1_1_TOKEN_TYPE).encode()
    assert parse_rstr(HttpResponse(status=200, body=body)).assertion == SAML11_ASSERTION.encode()


def test_saml_grant_in_a_token_request_is_redacted() -> None:
    saml = SamlAssertion(assertion=SAML11_ASSERTION.encode(), token_type=SAML_1_1_TOKEN_TYPE)
    request = build_token_request(
        AUTHORITY, CLIENT_ID, saml_grant(saml), scopes=("openid", "profile", "offline_access")
    )
    form = dict(parse_qsl(request.body.decode()))
    assert form["grant_type"] == SAML1_1_BEARER_GRANT and form["client_id"] == CLIENT_ID
    assert "assertion='<redacted>'" in repr(request) and dict(saml_grant(saml))["assertion"] not in repr(request)


ADFS_FAULT = f"""<s:Envelope xmlns:s="{S12}" xmlns:a="{WSA}" xmlns:u="{WSU}">
<s:Header><a:Action s:mustUnderstand="1">http://www.w3.org/2005/08/addressing/soap/fault</a:Action>
<o:Security s:mustUnderstand="1" xmlns:o="{WSSE}"><u:Timestamp u:Id="_0"><u:Created>2025-06-15T15:06:41.123Z</u:Created>
<u:Expires>2025-06-15T15:11:41.123Z</u:Expires></u:Timestamp></o:Security></s:Header>
<s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value>
<s:Subcode><s:Value xmlns:a="{WST13}">a:FailedAuthentication</s:Value>
</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">MSIS7068: Access denied.</s:Text></s:Reason>
<s:Detail><IssuerName xmlns="http://schemas.microsoft.com/ws/2009/12/identityserver/protocols/policystore"/></s:Detail>
</s:Fault></s:Body></s:Envelope>"""


def test_adfs_fault_is_a_failed_sign_in() -> None:
    with pytest.raises(FederatedSignInFailed) as caught:
        parse_rstr(xml_response(ADFS_FAULT, status=500))
    error = caught.value
    assert (error.code, error.subcode, error.reason, error.status) == (
        "s:Sender",
        "a:FailedAuthentication",
        "MSIS7068: Access denied.",
        500,
    )
    assert "MSIS7068: Access denied." in str(error) and "a:FailedAuthentication" in str(error)
    assert error.hint and "password" in error.hint


def test_soap11_fault() -> None:
    body = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>'
        "<faultcode>soap:Client</faultcode><faultstring>ID3242: The security token could not be authenticated "
        "or authorized.</faultstring></soap:Fault></soap:Body></soap:Envelope>"
    )
    with pytest.raises(FederatedSignInFailed) as caught:
        parse_rstr(xml_response(body, status=500, ctype="text/xml; charset=utf-8"))
    assert caught.value.code == "soap:Client" and caught.value.subcode is None
    assert caught.value.reason and caught.value.reason.startswith("ID3242")


def test_fault_echoing_the_password_is_redacted() -> None:
    escaped = "s3cr&amp;t&lt;pa&quot;ss&gt;&apos;wörd"
    body = ADFS_FAULT.replace("MSIS7068: Access denied.", f"bad password {escaped} \u202eevil").replace(
        "</s:Fault>", f"</s:Fault><o:Password xmlns:o='{WSSE}'>{escaped}</o:Password>"
    )
    with pytest.raises(FederatedSignInFailed) as caught:
        parse_rstr(xml_response(body, status=500), redact=(PASSWORD,))
    assert_no_password(caught.value)
    assert "\u202e" not in str(caught.value) and "[redacted]" in str(caught.value)


HOSTILE = [
    # billion laughs
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    "<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body>&lol2;</s:Body></s:Envelope>",
    # external entity
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>',
    # an external DTD, lower case, and an entity on its own
    '<!doctype r SYSTEM "http://evil.example/r.dtd"><r/>',
    "<r><!ENTITY x 'y'></r>",
    "<r/>\n<!DOCTYPE r>",
]


@pytest.mark.parametrize("body", HOSTILE)
def test_dtds_and_entities_are_refused_before_parsing(body: str) -> None:
    for parse in (parse_rstr, parse_mex):
        with pytest.raises(MalformedFederationResponse) as caught:
            parse(xml_response(body))
        assert "DTD" in str(caught.value) or "HTML" in str(caught.value)


@pytest.mark.parametrize(
    "response",
    [
        HttpResponse(status=200, headers=(("content-type", "text/html; charset=utf-8"),), body=b"<p>proxy</p>"),
        xml_response("<!DOCTYPE html><html><head><title>Sign in to Wi-Fi</title></head></html>"),
        xml_response("<html><body>Bad gateway</body></html>", status=502, ctype="application/soap+xml"),
    ],
)
def test_html_pages_are_refused(response: HttpResponse) -> None:
    with pytest.raises(MalformedFederationResponse) as caught:
        parse_rstr(response)
    assert "HTML" in str(caught.value)


@pytest.mark.parametrize(
    "response",
    [
        HttpResponse(status=200, body=b""),
        HttpResponse(status=200, body=rstr_13(SAML11_ASSERTION, SAML_1_1_TOKEN_TYPE).encode("utf-16")),
        xml_response("<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body>"),
        xml_response(f"<s:Envelope xmlns:s='{S12}'><s:Body><nothing/></s:Body></s:Envelope>"),
        # a token that is not an assertion, and a holder that hides another in a comment
        xml_response(rstr_13("<sct:SecurityContextToken xmlns:sct='urn:x'/>", SAML_1_1_TOKEN_TYPE)),
        xml_response(
            rstr_13(SAML11_ASSERTION, SAML_1_1_TOKEN_TYPE).replace(
                "<s:Body>", "<s:Body><!-- <x:RequestedSecurityToken> -->"
            )
        ),
    ],
)
def test_rstr_that_is_not_an_rstr(response: HttpResponse) -> None:
    with pytest.raises(MalformedFederationResponse):
        parse_rstr(response)


def test_rstr_of_an_unknown_token_type() -> None:
    with pytest.raises(FederationNotSupported) as caught:
        parse_rstr(xml_response(rstr_13(SAML11_ASSERTION, "urn:ietf:params:oauth:token-type:jwt")))
    assert "token-type:jwt" in str(caught.value)


# -- the flow -------------------------------------------------------------------------------------

Flow = Any


def token_ok(access_token: str = "at-federated") -> HttpResponse:
    return HttpResponse(
        status=200,
        headers=(("content-type", "application/json"),),
        body=token_response_body(access_token=access_token).encode(),
    )


def new_flow(token_request: Optional[Callable[[Pairs], HttpRequest]] = None, password: str = PASSWORD) -> Flow:
    return federated_password_flow(
        AUTHORITY,
        CLIENT_ID,
        USER,
        password,
        ("openid", "profile", "offline_access", "https://graph.microsoft.com/.default"),
        clock=lambda: NOW,
        headers=(("client-request-id", "cid-1"),),
        token_request=token_request,
        message_id=lambda: MESSAGE_ID,
    )


def run(flow: Flow, responses: List[HttpResponse]) -> Tuple[List[HttpRequest], Any]:
    """Step ``flow`` with ``responses`` in turn; the requests it sent and its result (or the error it raised)."""
    sent: List[HttpRequest] = []
    try:
        step, result = start(flow)
        for response in responses:
            if step is None:
                break
            assert isinstance(step, HttpRequest)
            sent.append(step)
            step, result = advance(flow, step, response)
    except OAuthCoreError as exc:
        return sent, exc
    assert step is None, f"the flow wants more: {step!r}"
    return sent, result


def assert_no_password(*things: Any) -> None:
    escaped = "s3cr&amp;t&lt;pa&quot;ss&gt;&apos;wörd"
    for thing in things:
        texts = [repr(thing), str(thing)]
        if isinstance(thing, BaseException):
            texts += [repr(v) for v in vars(thing).values()] + [str(a) for a in thing.args]
        for text in texts:
            assert PASSWORD not in text and escaped not in text and "s3cr" not in text, text


def test_managed_user_gets_the_plain_password_grant() -> None:
    sent, result = run(new_flow(), [json_response(MANAGED_REALM), token_ok("at-managed")])
    assert isinstance(result, TokenSet) and result.access_token == "at-managed"
    realm, token = sent
    assert realm.url.endswith("/common/userrealm/carol@fabrikam.example?api-version=1.0")
    assert ("client-request-id", "cid-1") in realm.headers
    form = dict(parse_qsl(token.body.decode()))
    assert form["grant_type"] == "password" and form["username"] == USER and form["password"] == PASSWORD
    assert ("x-anchormailbox", f"upn:{USER}") in token.headers
    assert token.url == AUTHORITY.token_endpoint
    assert_no_password(*sent)


def test_no_realm_discovery_falls_back_to_the_password_grant() -> None:
    sent, result = run(new_flow(), [HttpResponse(status=404, body=b"{}"), token_ok()])
    assert isinstance(result, TokenSet)
    assert dict(parse_qsl(sent[1].body.decode()))["grant_type"] == "password"


def test_federated_user_through_mex_and_ws_trust_13() -> None:
    responses = [
        json_response(FEDERATED_REALM),
        xml_response(ADFS_MEX),
        xml_response(rstr_13(SAML11_ASSERTION, SAML_1_1_TOKEN_TYPE)),
        token_ok(),
    ]
    sent, result = run(new_flow(), responses)
    assert isinstance(result, TokenSet) and result.access_token == "at-federated"
    _, mex_get, rst, token = sent
    assert mex_get.method == "GET" and mex_get.url == MEX_URL
    assert rst.url == f"{FS}/13/usernamemixed" and dict(rst.headers)["soapaction"] == ACTION_13
    assert ET.fromstring(rst.body).findtext(f".//{{{WSSE}}}Password") == PASSWORD
    assert ET.fromstring(rst.body).findtext(f".//{{{WSU}}}Created") == "2025-06-15T15:06:40Z"
    form = dict(parse_qsl(token.body.decode()))
    assert form["grant_type"] == SAML1_1_BEARER_GRANT and "password" not in form and "username" not in form
    assert base64.urlsafe_b64decode(form["assertion"] + "==") == SAML11_ASSERTION.encode()
    assert form["scope"] == "openid profile offline_access https://graph.microsoft.com/.default"
    assert not any(k == "x-anchormailbox" for k, _ in token.headers)
    assert_no_password(*sent)


def test_federated_user_without_mex_uses_the_active_auth_url() -> None:
    realm = {**FEDERATED_REALM, "federation_metadata_url": None, "cloud_audience_urn": "urn:federation:Other"}
    responses = [json_response(realm), xml_response(rstr_2005(SAML20_ASSERTION, SAML_2_0_TOKEN_TYPE)), token_ok()]
    sent, result = run(new_flow(), responses)
    assert isinstance(result, TokenSet)
    _, rst, token = sent
    assert rst.url == f"{FS}/2005/usernamemixed" and dict(rst.headers)["soapaction"] == ACTION_2005
    assert ET.fromstring(rst.body).findtext(f".//{{{WSA}}}EndpointReference/{{{WSA}}}Address") == "urn:federation:Other"
    assert dict(parse_qsl(token.body.decode()))["grant_type"] == SAML2_BEARER_GRANT


def test_the_callers_token_request_builds_the_grant() -> None:
    grants: List[Pairs] = []

    def confidential(grant: Pairs) -> HttpRequest:
        grants.append(grant)
        return build_token_request(AUTHORITY, CLIENT_ID, grant, scopes=("openid",), client_secret="client-s3cret")

    responses = [
        json_response(FEDERATED_REALM),
        xml_response(ADFS_MEX),
        xml_response(rstr_13(SAML11_ASSERTION, SAML_1_1_TOKEN_TYPE)),
        token_ok(),
    ]
    sent, result = run(new_flow(confidential), responses)
    assert isinstance(result, TokenSet)
    assert [dict(g)["grant_type"] for g in grants] == [SAML1_1_BEARER_GRANT]
    assert dict(parse_qsl(sent[-1].body.decode()))["client_secret"] == "client-s3cret"


@pytest.mark.parametrize(
    ("realm", "error"),
    [
        ({**FEDERATED_REALM, "federation_protocol": "SAML20"}, FederationNotSupported),
        (
            {**FEDERATED_REALM, "federation_metadata_url": None, "federation_active_auth_url": None},
            FederationNotSupported,
        ),
        ({**FEDERATED_REALM, "federation_metadata_url": "http://fs.fabrikam.example/mex"}, FederationNotSupported),
        (
            {
                **FEDERATED_REALM,
                "federation_metadata_url": None,
                "federation_active_auth_url": f"{FS}/13/windowstransport",
            },
            FederationNotSupported,
        ),
    ],
)
def test_federated_realms_that_cannot_take_a_password(realm: Dict[str, Any], error: type) -> None:
    sent, result = run(new_flow(), [json_response(realm)])
    assert isinstance(result, error) and len(sent) == 1
    assert_no_password(result)


def test_realm_lookup_failure_ends_the_flow() -> None:
    sent, result = run(new_flow(), [HttpResponse(status=400, body=b'{"error":"invalid_request"}')])
    assert isinstance(result, UserRealmLookupFailed) and len(sent) == 1


def test_mex_without_username_endpoint_ends_the_flow() -> None:
    windows_only = mex(
        POLICY_WINDOWS,
        binding("WindowsWSTrustBinding_IWSTrust13Async", "WindowsWSTrustBinding_IWSTrust13Async_policy", ACTION_13),
        port("WindowsWSTrustBinding_IWSTrust13Async", f"{FS}/13/windowstransport"),
    )
    sent, result = run(new_flow(), [json_response(FEDERATED_REALM), xml_response(windows_only)])
    assert isinstance(result, NoUsernamePasswordEndpoint) and len(sent) == 2
    assert_no_password(*sent, result)


def test_bad_password_is_a_failed_sign_in() -> None:
    responses = [json_response(FEDERATED_REALM), xml_response(ADFS_MEX), xml_response(ADFS_FAULT, status=500)]
    sent, result = run(new_flow(), responses)
    assert isinstance(result, FederatedSignInFailed) and result.subcode == "a:FailedAuthentication"
    assert len(sent) == 3
    assert_no_password(*sent, result)


@pytest.mark.parametrize(
    "rstr",
    [
        xml_response(HOSTILE[0]),
        xml_response("<html><body>proxy</body></html>", ctype="text/html"),
        xml_response("<s:Envelope"),
        # a server reflecting the request back: the password must not reach the error's snippet
        HttpResponse(
            status=500, body=b"echo: <wsse:Password>s3cr&amp;t&lt;pa&quot;ss&gt;&apos;w\xc3\xb6rd</wsse:Password> <"
        ),
    ],
)
def test_malformed_rstr_ends_the_flow(rstr: HttpResponse) -> None:
    sent, result = run(new_flow(), [json_response(FEDERATED_REALM), xml_response(ADFS_MEX), rstr])
    assert isinstance(result, MalformedFederationResponse) and len(sent) == 3
    assert_no_password(*sent, result)


def test_entra_refusing_the_assertion_is_an_oauth_error() -> None:
    refusal = HttpResponse(
        status=400,
        headers=(("content-type", "application/json"),),
        body=json.dumps(
            {
                "error": "invalid_grant",
                "error_description": "AADSTS50126: Error validating credentials.",
                "error_codes": [50126],
            }
        ).encode(),
    )
    responses = [
        json_response(FEDERATED_REALM),
        xml_response(ADFS_MEX),
        xml_response(rstr_13(SAML11_ASSERTION, SAML_1_1_TOKEN_TYPE)),
        refusal,
    ]
    sent, result = run(new_flow(), responses)
    assert isinstance(result, InvalidGrant) and len(sent) == 4
    assert_no_password(*sent, result)


def test_a_transport_error_thrown_in_propagates() -> None:
    flow = new_flow()
    step, _ = start(flow)
    assert isinstance(step, HttpRequest)
    step, _ = advance(flow, step, json_response(FEDERATED_REALM))
    assert isinstance(step, HttpRequest) and step.url == MEX_URL
    with pytest.raises(TransportError):
        advance(flow, step, TransportError("connection refused"))


def test_empty_password_is_refused_without_sending_it() -> None:
    sent, result = run(new_flow(password=""), [json_response(FEDERATED_REALM), xml_response(ADFS_MEX)])
    assert isinstance(result, ConfigError) and len(sent) == 2


# -- against MSAL's own parsers (fidelity; skipped without msal) ----------------------------------


def _shape(element: ET.Element) -> List[Tuple[str, str]]:
    """Every element's tag path with its text, ignoring the whitespace between elements."""
    found: List[Tuple[str, str]] = []

    def walk(node: ET.Element, path: str) -> None:
        here = f"{path}/{node.tag}"
        found.append((here, (node.text or "").strip()))
        for child in node:
            walk(child, here)

    walk(element, "")
    return found


def test_msal_agrees_on_mex_rstr_and_rst() -> None:
    msal_mex = pytest.importorskip("msal.mex")
    msal_request = pytest.importorskip("msal.wstrust_request")
    msal_response = pytest.importorskip("msal.wstrust_response")
    theirs = msal_mex.Mex(ADFS_MEX).get_wstrust_username_password_endpoint()
    ours = parse_mex(xml_response(ADFS_MEX))
    assert (theirs["address"], theirs["action"]) == (ours.address, ours.action)
    for body in (rstr_13(SAML11_ASSERTION, SAML_1_1_TOKEN_TYPE), rstr_2005(SAML20_ASSERTION, SAML_2_0_TOKEN_TYPE)):
        token = msal_response.parse_response(body)
        saml = parse_rstr(xml_response(body))
        assert token["token"].strip() == saml.assertion and token["type"] == saml.token_type
    for version in (WSTRUST_13, WSTRUST_2005):
        request, root = built_rst(version)
        endpoint = WsTrustEndpoint(address=request.url, version=version)
        msal_rst = ET.fromstring(
            msal_request._build_rst(USER, PASSWORD, "urn:federation:MicrosoftOnline", endpoint.address, endpoint.action)
        )
        volatile = ("MessageID", "Created", "Expires")
        assert [(p, "" if p.endswith(volatile) else t) for p, t in _shape(root)] == [
            (p, "" if p.endswith(volatile) else t) for p, t in _shape(msal_rst)
        ]
