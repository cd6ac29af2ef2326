"""The stand-in AD FS's SAML assertions: SAML 1.1 (WS-Trust 2005) and SAML 2.0 (WS-Trust 1.3).

:func:`issue_assertion` writes a signed assertion (XML-DSig with the IdP's key, see
:mod:`.xmldsig`) for a user of a federated domain, audience ``urn:federation:MicrosoftOnline``,
with the ``UPN`` and ``ImmutableID`` attributes AD FS sends for Microsoft 365, and remembers its
id. :func:`verify_assertion` is the token endpoint's side of the SAML bearer grants
(entra-protocol-2.md §4.5): decode, signature, issuer, audience, validity window, a known id, and
the user it names.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Optional

from .keys import idp_signing_key
from .xmldsig import element, parse_xml, sign_enveloped, verify_enveloped

__all__ = [
    "AUDIENCE",
    "SAML1",
    "SAML2",
    "Verified",
    "decode_assertion",
    "idp_issuer",
    "issue_assertion",
    "verify_assertion",
]

SAML1 = "urn:oasis:names:tc:SAML:1.0:assertion"
SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
AUDIENCE = "urn:federation:MicrosoftOnline"
LIFETIME = 3600
_SKEW = 300
_CLAIMS = "http://schemas.xmlsoap.org/claims"
_LIVE_ID = "http://schemas.microsoft.com/LiveID/Federation/2008/05"


def idp_issuer(domain: str) -> str:
    """The stand-in AD FS's issuer name (AD FS: ``http://<sts host>/adfs/services/trust``)."""
    return f"http://sts.{domain}/adfs/services/trust"


def saml_time(epoch: float) -> str:
    """AD FS's timestamp form: UTC with milliseconds, ``2026-01-02T03:04:05.678Z``."""
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_time(text: Optional[str]) -> Optional[float]:
    if not text:
        return None
    try:
        moment = datetime.datetime.strptime(text.rstrip("Z").split(".")[0], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def immutable_id(object_id: str) -> str:
    """The ImmutableID AD FS sends: base64 of the user's GUID bytes (as of an objectGUID source anchor)."""
    return base64.b64encode(uuid.UUID(object_id).bytes_le).decode("ascii")


def _saml1(assertion_id: str, issuer: str, upn: str, anchor: str, now: float) -> str:
    def tag(name: str) -> str:
        return f"saml:{name}"

    def subject() -> str:
        name_id = element(
            tag("NameIdentifier"), {"Format": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"}, text=anchor
        )
        method = element(tag("ConfirmationMethod"), text="urn:oasis:names:tc:SAML:1.0:cm:bearer")
        return element(tag("Subject"), children=[name_id, element(tag("SubjectConfirmation"), children=[method])])

    def attribute(name: str, namespace: str, value: str) -> str:
        return element(
            tag("Attribute"),
            {"AttributeName": name, "AttributeNamespace": namespace},
            [element(tag("AttributeValue"), text=value)],
        )

    audience = element(tag("AudienceRestrictionCondition"), children=[element(tag("Audience"), text=AUDIENCE)])
    conditions = element(
        tag("Conditions"), {"NotBefore": saml_time(now), "NotOnOrAfter": saml_time(now + LIFETIME)}, [audience]
    )
    statement = element(
        tag("AttributeStatement"),
        children=[subject(), attribute("UPN", _CLAIMS, upn), attribute("ImmutableID", _LIVE_ID, anchor)],
    )
    authentication = element(
        tag("AuthenticationStatement"),
        {"AuthenticationInstant": saml_time(now), "AuthenticationMethod": "urn:oasis:names:tc:SAML:1.0:am:password"},
        [subject()],
    )
    attrs = {
        "AssertionID": assertion_id,
        "IssueInstant": saml_time(now),
        "Issuer": issuer,
        "MajorVersion": "1",
        "MinorVersion": "1",
    }
    return _signed("saml:Assertion", attrs, [conditions, statement, authentication], {"saml": SAML1}, assertion_id, -1)


def _saml2(assertion_id: str, issuer: str, upn: str, anchor: str, now: float) -> str:
    name_id = element("NameID", {"Format": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"}, text=anchor)
    confirmation = element(
        "SubjectConfirmation",
        {"Method": "urn:oasis:names:tc:SAML:2.0:cm:bearer"},
        [element("SubjectConfirmationData", {"NotOnOrAfter": saml_time(now + _SKEW)})],
    )
    audience = element("AudienceRestriction", children=[element("Audience", text=AUDIENCE)])
    conditions = element(
        "Conditions", {"NotBefore": saml_time(now), "NotOnOrAfter": saml_time(now + LIFETIME)}, [audience]
    )

    def attribute(name: str, value: str) -> str:
        return element("Attribute", {"Name": name}, [element("AttributeValue", text=value)])

    statement = element(
        "AttributeStatement",
        children=[attribute(f"{_CLAIMS}/UPN", upn), attribute(f"{_LIVE_ID}/ImmutableID", anchor)],
    )
    context = element(
        "AuthnContext",
        children=[
            element("AuthnContextClassRef", text="urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")
        ],
    )
    authn = element("AuthnStatement", {"AuthnInstant": saml_time(now)}, [context])
    children = [
        element("Issuer", text=issuer),
        element("Subject", children=[name_id, confirmation]),
        conditions,
        statement,
        authn,
    ]
    attrs = {"ID": assertion_id, "IssueInstant": saml_time(now), "Version": "2.0"}
    return _signed("Assertion", attrs, children, {"": SAML2}, assertion_id, 1)


def _signed(tag: str, attrs: dict[str, str], children: list[str], ns: dict[str, str], ref: str, at: int) -> str:
    """The element, signed: the signature goes after the Issuer (SAML 2.0, ``at`` 1) or last (SAML 1.1)."""
    unsigned = element(tag, attrs, children, ns=ns)
    signature = sign_enveloped(unsigned, ref, idp_signing_key())
    placed = [*children]
    placed.insert(len(placed) if at < 0 else at, signature)
    return element(tag, attrs, placed, ns=ns)


def issue_assertion(version: str, *, upn: str, object_id: str, domain: str, now: float) -> tuple[str, str]:
    """A signed assertion (``SAML1`` or ``SAML2``) for ``upn``; returns (assertion id, XML text)."""
    assertion_id = "_" + str(uuid.uuid4())
    build = _saml1 if version == SAML1 else _saml2
    return assertion_id, build(assertion_id, idp_issuer(domain), upn, immutable_id(object_id), now)


@dataclass(frozen=True)
class Verified:
    """What a verified assertion says: its id, the user's UPN, and until when it is valid."""

    assertion_id: str
    upn: str
    not_on_or_after: float


def decode_assertion(value: str) -> Optional[str]:
    """The assertion XML from the grant's ``assertion``: base64url (MSAL, RFC 7522) or standard base64,
    padded or not; None when it does not decode to UTF-8 text."""
    text = value.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def _fields(root: ET.Element, version: str) -> tuple[Optional[str], Optional[str], Optional[ET.Element], Optional[str]]:
    """(id, issuer, conditions, UPN) of a SAML 1.1 or 2.0 assertion element."""
    ns = {"a": version}
    if version == SAML1:
        assertion_id, issuer = root.get("AssertionID"), root.get("Issuer")
        upn_node = root.find("a:AttributeStatement/a:Attribute[@AttributeName='UPN']/a:AttributeValue", ns)
    else:
        assertion_id, issuer = root.get("ID"), root.findtext("a:Issuer", None, ns)
        upn_node = root.find(f"a:AttributeStatement/a:Attribute[@Name='{_CLAIMS}/UPN']/a:AttributeValue", ns)
    upn = upn_node.text if upn_node is not None else None
    return assertion_id, issuer, root.find("a:Conditions", ns), upn


def _audience(conditions: ET.Element, version: str) -> Optional[str]:
    path = "a:AudienceRestrictionCondition/a:Audience" if version == SAML1 else "a:AudienceRestriction/a:Audience"
    return conditions.findtext(path, None, {"a": version})


def verify_assertion(xml: str, *, version: str, domains: tuple[str, ...], now: float) -> Verified:
    """Check an assertion of the stand-in AD FS, as the token endpoint does.

    Raises:
        ValueError: why it is not acceptable (the text is for logs; callers answer with one refusal).
    """
    root = parse_xml(xml)
    if root.tag != f"{{{version}}}Assertion":
        raise ValueError("not an assertion of the grant's SAML version")
    assertion_id, issuer, conditions, upn = _fields(root, version)
    if not assertion_id or not verify_enveloped(xml, assertion_id, idp_signing_key().cert_der):
        raise ValueError("the signature does not verify")
    domain = next((d for d in domains if issuer == idp_issuer(d)), None)
    if domain is None or conditions is None or not upn:
        raise ValueError("unknown issuer, or no conditions or UPN")
    if _audience(conditions, version) != AUDIENCE:
        raise ValueError("wrong audience")
    not_before, not_after = _parse_time(conditions.get("NotBefore")), _parse_time(conditions.get("NotOnOrAfter"))
    if not_before is None or not_after is None or not not_before - _SKEW <= now < not_after + _SKEW:
        raise ValueError("outside its validity window")
    if upn.rpartition("@")[2].lower() != domain:
        raise ValueError("the user is not of the issuer's domain")
    return Verified(assertion_id, upn, not_after)
