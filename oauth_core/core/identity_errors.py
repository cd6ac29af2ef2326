"""The managed identity branch of the exception tree, and how endpoint error bodies map onto it.

::

    OAuthCoreError
    └── ManagedIdentityError            a managed identity endpoint refused, or its answer cannot be used
        ├── IdentityUnavailable         no managed identity endpoint here (not on Azure, or it is blocked)
        ├── IdentityNotFound            the user-assigned identity named is not assigned to this resource
        ├── NoIdentityAssigned          this resource has no managed identity at all
        └── ResourceNotPermitted        the resource (audience) is unknown or not allowed

The endpoints answer in three shapes (entra-protocol-2.md §1.4): IMDS and Azure Arc send OAuth's
``{"error", "error_description"}``; Service Fabric and Cloud Shell ``{"error": {"code", "message",
"correlationId"}}``; App Service ``{"statusCode", "message", "correlationId"}``. Their texts change
without notice, so only stable codes and a few long-lived phrases choose the class; everything else
is a plain :class:`ManagedIdentityError` that still carries what the service said.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple, Type

from .errors import OAuthCoreError, ResponseFormatError
from .messages import HttpResponse, parse_json_object
from .redaction import redacted_snippet, terminal_safe

__all__ = [
    "IdentityNotFound",
    "IdentityUnavailable",
    "ManagedIdentityError",
    "NoIdentityAssigned",
    "ResourceNotPermitted",
    "check_arc_echo",
    "managed_identity_error",
    "raise_for_identity_status",
]

_MAX_TEXT = 300


class ManagedIdentityError(OAuthCoreError):
    """A managed identity endpoint refused to issue a token, or its answer cannot be used.

    Attributes:
        status: the HTTP status, when an endpoint answered.
        error: the service's error code (``invalid_request``, ``ManagedIdentityNotFound`` ...), if any.
        error_description: the service's text, shortened, with anything token-like redacted.
        correlation_id: the service's correlation id, if it sent one.
    """

    hint: Optional[str] = (
        "Check that this Azure resource has a managed identity enabled and that the identity may get tokens "
        "for the resource requested; the service's error says what it refused."
    )

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        error: Optional[str] = None,
        error_description: str = "",
        correlation_id: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.error_description = error_description
        self.correlation_id = correlation_id

    def to_dict(self) -> Dict[str, Any]:
        """The error as a JSON-ready dict (only what the service said; never a token or secret)."""
        return {
            "error": self.error,
            "error_description": self.error_description,
            "correlation_id": self.correlation_id,
            "status": self.status,
        }


class IdentityUnavailable(ManagedIdentityError):
    """No managed identity endpoint answers here: not on Azure, or the endpoint is unreachable."""

    hint = (
        "No managed identity endpoint is reachable: run on an Azure resource with a managed identity, "
        "or use another credential here. In containers, the instance metadata address 169.254.169.254 "
        "must be reachable without a proxy."
    )


class IdentityNotFound(ManagedIdentityError):
    """The user-assigned identity named (client, object or resource id) is not assigned to this resource."""

    hint = (
        "Assign the user-assigned identity to this Azure resource, or pass the id of one that is assigned "
        "(client id, object id or resource id); a new assignment can take a few minutes to apply."
    )


class NoIdentityAssigned(ManagedIdentityError):
    """This resource has no managed identity: none system-assigned, and none user-assigned that applies."""

    hint = (
        "Enable the system-assigned identity of this Azure resource, or assign a user-assigned identity "
        "and name it by its client id; a new assignment can take a few minutes to apply."
    )


class ResourceNotPermitted(ManagedIdentityError):
    """The resource (the token's audience) is unknown in the identity's tenant, or not allowed."""

    hint = (
        "Check the resource: one scope, `<resource>/.default` or the bare resource URI exactly as the "
        "service registers it (for example https://management.azure.com, with no extra path or slash)."
    )


def _clean(value: Any) -> Optional[str]:
    if not isinstance(value, str) or not value.strip():
        return None
    text = terminal_safe(redacted_snippet(value.encode("utf-8", "replace"), limit=_MAX_TEXT))
    return text or None


def _fields(body: Mapping[str, Any]) -> Tuple[Optional[str], str, Optional[str]]:
    """``(error, description, correlation id)`` from any of the three error shapes."""
    error = body.get("error")
    if isinstance(error, Mapping):  # Service Fabric, Cloud Shell
        return (
            _clean(error.get("code")),
            _clean(error.get("message")) or "",
            _clean(error.get("correlationId")),
        )
    description = body.get("error_description")
    if description is None:  # App Service: {"statusCode", "message", "correlationId"}
        description = body.get("message", body.get("Message"))
    return _clean(error), _clean(description) or "", _clean(body.get("correlationId", body.get("correlation_id")))


# Phrases the endpoints have used for years when the identity asked for is not there; matched lower-cased.
_NOT_FOUND_PHRASES = (
    "identity not found",  # IMDS 400 invalid_request
    "unable to load the proper managed identity",  # App Service / Functions / Container Apps
    "no managed identity",
    "no msi found",
)
_NOT_FOUND_CODES = frozenset({"managedidentitynotfound", "unauthorized_client"})
_RESOURCE_CODES = frozenset({"invalid_resource", "invalid_scope", "argumentnullorempty"})
# AADSTS50001: no application for the resource in the tenant; 500011: no service principal for it.
_RESOURCE_AADSTS = ("aadsts50001", "aadsts500011")


def _class_for(status: int, error: Optional[str], description: str, user_assigned: bool) -> Type[ManagedIdentityError]:
    code, text = (error or "").lower(), description.lower()
    if status == 403 and "unreachable" in text:
        return IdentityUnavailable  # a proxy (Docker Desktop) answering for an unreachable IMDS
    if code in _RESOURCE_CODES or any(aadsts in text for aadsts in _RESOURCE_AADSTS):
        return ResourceNotPermitted
    if code in _NOT_FOUND_CODES or any(phrase in text for phrase in _NOT_FOUND_PHRASES):
        return IdentityNotFound if user_assigned else NoIdentityAssigned
    return ManagedIdentityError


def managed_identity_error(status: int, body: Mapping[str, Any], *, user_assigned: bool) -> ManagedIdentityError:
    """The typed error for a managed identity endpoint's error body.

    Args:
        status: the HTTP status.
        body: the JSON object the endpoint sent.
        user_assigned: whether a user-assigned identity was named, which decides between
            :class:`IdentityNotFound` and :class:`NoIdentityAssigned` for a "not found" answer.
    """
    error, description, correlation_id = _fields(body)
    cls = _class_for(status, error, description, user_assigned)
    said = ": ".join(part for part in (error, description) if part)
    message = f"the managed identity endpoint refused (HTTP {status})" + (f": {said}" if said else "")
    return cls(message, status=status, error=error, error_description=description, correlation_id=correlation_id)


def raise_for_identity_status(response: HttpResponse, *, user_assigned: bool) -> None:
    """Return for a 200 token answer; raise the typed error for anything else.

    Raises:
        ManagedIdentityError: (a subclass of) the endpoint's refusal, from any of the error shapes.
        ResponseFormatError: an HTML page, an empty or non-JSON body, or an unexpected status.
    """
    if response.status == 200:
        body = parse_json_object(response)
        if body.get("error") is not None and body.get("access_token") is None:
            raise managed_identity_error(200, body, user_assigned=user_assigned)
        return
    if response.status >= 400:
        if response.status == 403 and b"unreachable" in response.body.lower():  # Docker Desktop's proxy, plain text
            text = _clean(response.body[:2000].decode("utf-8", "replace")) or ""
            raise IdentityUnavailable(
                "a proxy answered for an unreachable endpoint (HTTP 403)", status=403, error_description=text
            )
        raise managed_identity_error(response.status, parse_json_object(response), user_assigned=user_assigned)
    hint = " (redirects are not followed)" if 300 <= response.status < 400 else ""
    raise ResponseFormatError(
        f"unexpected HTTP {response.status} from the managed identity endpoint{hint}",
        status=response.status,
        snippet=redacted_snippet(response.body),
    )


# Where Azure Arc echoes the user-assigned identity it used (entra-protocol-2.md §1.6).
_ARC_ECHO: Mapping[str, Tuple[str, ...]] = {
    "client_id": ("client_id",),
    "object_id": ("object_id",),
    "resource_id": ("msi_res_id", "mi_res_id"),
}


def check_arc_echo(kind: str, value: str, body: Mapping[str, Any]) -> None:
    """Fail closed when Azure Arc's token answer does not echo the user-assigned identity asked for.

    A legacy agent ignores the selector and answers for the machine's own identity; a token for
    another identity than the one named must not be used. Ids compare case-insensitively.

    Raises:
        IdentityNotFound: no echo, or another identity's.
    """
    echoed = next((body[f] for f in _ARC_ECHO.get(kind, ()) if isinstance(body.get(f), str) and body[f]), None)
    if echoed is None or echoed.lower() != value.lower():
        raise IdentityNotFound(
            f"Azure Arc did not confirm the requested {kind}: the agent likely ignores user-assigned "
            "identities and answered for the machine's own identity; the token was discarded"
        )
