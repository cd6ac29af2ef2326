"""Canonical XML writing and enveloped XML signatures (XML-DSig, RSA-SHA256, exclusive C14N).

The stand-in AD FS writes its SAML assertions already in exclusive canonical form (namespace
declarations only where first used, attributes sorted, no self-closing tags, no whitespace between
elements), so the bytes it signs are the bytes it sends: a verifier running a real exclusive
canonicalization gets the same octets. :func:`verify_enveloped` checks such a signature the same
way, by cutting the ``ds:Signature`` element out of the text; it verifies only what this module
wrote (any other serialisation fails, which is the safe side).
"""

from __future__ import annotations

import base64
import hashlib
import re
import xml.etree.ElementTree as ET
from typing import Mapping, Optional, Sequence, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .keys import SigningKey

__all__ = ["DSIG", "element", "escape_attr", "escape_text", "parse_xml", "sign_enveloped", "verify_enveloped"]

DSIG = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
_SIGNED_INFO = re.compile(r"<ds:SignedInfo>.*?</ds:SignedInfo>", re.DOTALL)
_REFERENCE = re.compile(r'<ds:Reference URI="#([^"]*)">')
_DIGEST = re.compile(r"<ds:DigestValue>([A-Za-z0-9+/=]+)</ds:DigestValue>")
_SIGNATURE_VALUE = re.compile(r"<ds:SignatureValue>([A-Za-z0-9+/=]+)</ds:SignatureValue>")
_SIGNATURE_OPEN = f'<ds:Signature xmlns:ds="{DSIG}">'


def escape_text(text: str) -> str:
    """Character data as exclusive C14N writes it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")


def escape_attr(value: str) -> str:
    """An attribute value as exclusive C14N writes it."""
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), ('"', "&quot;"), ("\t", "&#x9;"), ("\n", "&#xA;")):
        value = value.replace(char, entity)
    return value.replace("\r", "&#xD;")


def element(
    tag: str,
    attrs: Optional[Mapping[str, str]] = None,
    children: Sequence[str] = (),
    text: str = "",
    ns: Optional[Mapping[str, str]] = None,
) -> str:
    """One element in canonical form: namespace declarations (default first, then by prefix), then
    unqualified attributes sorted by name, then escaped ``text`` and the (already canonical) children."""
    parts = [tag]
    for prefix in sorted(ns or {}):
        name = f"xmlns:{prefix}" if prefix else "xmlns"
        parts.append(f'{name}="{escape_attr((ns or {})[prefix])}"')
    parts.extend(f'{name}="{escape_attr(value)}"' for name, value in sorted((attrs or {}).items()))
    return f"<{' '.join(parts)}>{escape_text(text)}{''.join(children)}</{tag}>"


def _signed_info(reference_id: str, digest: str, *, declare: bool) -> str:
    ds = {"ds": DSIG} if declare else None
    reference = element(
        "ds:Reference",
        {"URI": f"#{reference_id}"},
        [
            element(
                "ds:Transforms",
                children=[
                    element("ds:Transform", {"Algorithm": ENVELOPED}),
                    element("ds:Transform", {"Algorithm": EXC_C14N}),
                ],
            ),
            element("ds:DigestMethod", {"Algorithm": SHA256}),
            element("ds:DigestValue", text=digest),
        ],
    )
    return element(
        "ds:SignedInfo",
        children=[
            element("ds:CanonicalizationMethod", {"Algorithm": EXC_C14N}),
            element("ds:SignatureMethod", {"Algorithm": RSA_SHA256}),
            reference,
        ],
        ns=ds,
    )


def sign_enveloped(unsigned: str, reference_id: str, key: SigningKey) -> str:
    """The ``ds:Signature`` element over ``unsigned`` (the canonical element without its signature)."""
    digest = base64.b64encode(hashlib.sha256(unsigned.encode("utf-8")).digest()).decode("ascii")
    canonical = _signed_info(reference_id, digest, declare=True)
    value = base64.b64encode(key.sign(canonical.encode("utf-8"))).decode("ascii")
    certificate = base64.b64encode(key.cert_der).decode("ascii")
    key_info = element(
        "ds:KeyInfo",
        children=[element("ds:X509Data", children=[element("ds:X509Certificate", text=certificate)])],
    )
    return element(
        "ds:Signature",
        children=[
            _signed_info(reference_id, digest, declare=False),
            element("ds:SignatureValue", text=value),
            key_info,
        ],
        ns={"ds": DSIG},
    )


def verify_enveloped(signed: str, reference_id: str, cert_der: bytes) -> bool:
    """True when ``signed`` carries one ``ds:Signature`` written by :func:`sign_enveloped` for
    ``reference_id``, its digest matches the rest of the element and the signature verifies."""
    start = signed.find(_SIGNATURE_OPEN)
    end = signed.find("</ds:Signature>", start) + len("</ds:Signature>")
    if start < 0 or end < start or signed.count(_SIGNATURE_OPEN) != 1:
        return False
    signature, unsigned = signed[start:end], signed[:start] + signed[end:]
    signed_info, reference = _SIGNED_INFO.search(signature), _REFERENCE.search(signature)
    digest, value = _DIGEST.search(signature), _SIGNATURE_VALUE.search(signature)
    if not (signed_info and reference and digest and value) or reference.group(1) != reference_id:
        return False
    actual = base64.b64encode(hashlib.sha256(unsigned.encode("utf-8")).digest()).decode("ascii")
    if actual != digest.group(1):
        return False
    canonical = signed_info.group(0).replace("<ds:SignedInfo>", f'<ds:SignedInfo xmlns:ds="{DSIG}">', 1)
    public_key = x509.load_der_x509_certificate(cert_der).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        return False
    try:
        public_key.verify(
            base64.b64decode(value.group(1)), canonical.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def parse_xml(data: Union[str, bytes]) -> ET.Element:
    """Parse untrusted XML: a document type declaration (the only way to entity expansion or
    external entities) is refused before the parser sees the text.

    Raises:
        ValueError: a DOCTYPE, or not well-formed XML.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise ValueError("document type declarations are not accepted")
    try:
        return ET.fromstring(raw)  # noqa: S314 - no DTD can reach the parser (checked above)
    except ET.ParseError:
        raise ValueError("not well-formed XML") from None
