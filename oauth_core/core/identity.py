"""Managed identity, sans-I/O: the token source the environment names, its request, its answer.

Service Fabric, App Service (Functions, Container Apps), Azure ML, Azure Arc, Cloud Shell or the VM's
IMDS (entra-protocol-2.md §1): each has its own api-version, identity parameters, secret header and
``expires_on`` shape. The environment comes in as a mapping; :func:`token_flow` yields requests (and
Arc's :class:`ReadArcKey`) for a driver. Endpoints the environment names may be plain http to any host
(App Service on Linux uses a bridge address): the platform that set them serves them; only malformed
URLs are refused.
"""

from __future__ import annotations

import math
import ntpath
import posixpath
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Callable, Dict, Generator, Mapping, Optional, Sequence, Union
from urllib.parse import urlsplit

from .claims import unverified_claims
from .errors import ConfigError, ResponseFormatError, TokenDecodeError
from .identity_errors import ManagedIdentityError, check_arc_echo, raise_for_identity_status
from .messages import HttpRequest, HttpResponse, Pairs, TokenSet, encode_form, number_of_seconds, parse_json_object

__all__ = [
    "ARC_DEFAULT_ENDPOINT",
    "IMDS_HOST",
    "IMDS_STARTUP_RETRY_SECONDS",
    "RETRY_STATUSES_IMDS",
    "SOURCES",
    "IdentityId",
    "IdentitySource",
    "ReadArcKey",
    "arc_key_path",
    "default_arc_key_folder",
    "detect_source",
    "environment_source",
    "is_probe_answer",
    "parse_token_response",
    "probe_request",
    "resource_for",
    "token_flow",
    "token_request",
]

SOURCES = ("service_fabric", "app_service", "azure_ml", "cloud_shell", "azure_arc", "imds")
IMDS_HOST = "169.254.169.254"
IMDS_TOKEN_PATH = "/metadata/identity/oauth2/token"
ARC_DEFAULT_ENDPOINT = "http://localhost:40342/metadata/identity/oauth2/token"
# The VM guidance (§1.5): retry 404, 410, 429 and 5xx; 410 means IMDS is restarting, back within 70 s.
RETRY_STATUSES_IMDS = frozenset({404, 410, 429, 500, 502, 503, 504})
IMDS_STARTUP_RETRY_SECONDS = 70.0
_IDENTITY_KINDS = ("system", "client_id", "object_id", "resource_id")

_API_VERSION: Mapping[str, str] = {
    "service_fabric": "2019-07-01-preview",  # the only value Service Fabric accepts (§1.2)
    "app_service": "2019-08-01",
    "azure_ml": "2017-09-01",
    "azure_arc": "2020-06-01",
    "imds": "2018-02-01",
}
# The query name of each user-assigned identity kind, per source; a missing kind is refused.
_SELECTORS: Mapping[str, Mapping[str, str]] = {
    "imds": {"client_id": "client_id", "object_id": "object_id", "resource_id": "msi_res_id"},
    "azure_arc": {"client_id": "client_id", "object_id": "object_id", "resource_id": "msi_res_id"},
    "app_service": {"client_id": "client_id", "object_id": "object_id", "resource_id": "mi_res_id"},
    # The 2017 API reads only `clientid`; an identity it ignored would silently become the system one.
    "azure_ml": {"client_id": "clientid"},
    "service_fabric": {},  # the identity is fixed by the cluster's configuration
    "cloud_shell": {},  # tokens are the signed-in user's
}
_SECRET_HEADER = {"service_fabric": "secret", "app_service": "X-IDENTITY-HEADER", "azure_ml": "secret"}
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BASIC_REALM = re.compile(r"basic\s+realm\s*=\s*(.+)", re.IGNORECASE | re.DOTALL)
_THUMBPRINT = re.compile(r"[0-9a-f]{40}")
_EPOCH_LIMIT = 10**11  # about the year 5100, as claims.py bounds token times
_DATE_FORMATS = ("%m/%d/%Y %H:%M:%S %z", "%m/%d/%Y %I:%M:%S %p %z")  # App Service 2017: Linux, Windows
_HALF_LIFE_FROM = 7200.0  # MSAL's rule: long-lived tokens without refresh_in refresh at half-life


@dataclass(frozen=True)
class IdentityId:
    """Which managed identity: the system-assigned one, or a user-assigned one by client, object or resource id."""

    kind: str
    value: Optional[str] = None

    def __post_init__(self) -> None:
        if self.kind not in _IDENTITY_KINDS:
            raise ConfigError(f"identity kind must be one of {', '.join(_IDENTITY_KINDS)}")
        if self.kind == "system":
            if self.value is not None:
                raise ConfigError("the system-assigned identity takes no id")
        elif not isinstance(self.value, str) or not self.value or len(self.value) > 1000 or _UNSAFE.search(self.value):
            raise ConfigError(f"{self.kind}: a non-empty id without spaces or control characters is required")

    @classmethod
    def of(
        cls, *, client_id: Optional[str] = None, object_id: Optional[str] = None, resource_id: Optional[str] = None
    ) -> IdentityId:
        """The identity named by at most one id (none: system-assigned); ConfigError for several or a blank one."""
        given = (("client_id", client_id), ("object_id", object_id), ("resource_id", resource_id))
        named = {kind: value for kind, value in given if value is not None}
        if len(named) > 1:
            raise ConfigError(
                "name a user-assigned identity by one of client_id, object_id or resource_id, not several"
            )
        if not named:
            return cls("system")
        kind, value = next(iter(named.items()))
        return cls(kind, value.strip() if isinstance(value, str) else value)

    @property
    def user_assigned(self) -> bool:
        return self.kind != "system"


def _check_url(url: str, name: str, *, https_only: bool = False) -> str:
    """``url`` if it is a usable absolute http(s) URL; ConfigError naming ``name`` (never the value) otherwise."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        _ = parts.port  # parsing the port is the check
    except ValueError:
        raise ConfigError(f"{name} is not a valid URL") from None
    if _UNSAFE.search(url):
        raise ConfigError(f"{name} must not contain spaces or control characters")
    if parts.scheme not in ("https", "http") or (https_only and parts.scheme != "https"):
        raise ConfigError(f"{name} must be an {'https' if https_only else 'http or https'} URL")
    if not parts.hostname or "@" in parts.netloc or "#" in url:
        raise ConfigError(f"{name} must name a host, with no credentials (user@) and no fragment (#)")
    return url


def _check_header_value(value: str, name: str) -> str:
    value = value.strip()
    if not value or _UNSAFE.search(value):
        raise ConfigError(f"{name} must be a non-empty value without spaces or control characters")
    return value


@dataclass(frozen=True)
class IdentitySource:
    """Where tokens come from: one of :data:`SOURCES`, its token URL, and its secret (never shown)."""

    kind: str
    endpoint: str
    secret: Optional[str] = field(default=None, repr=False)
    server_thumbprint: Optional[str] = None

    def __post_init__(self) -> None:
        if self.kind not in SOURCES:
            raise ConfigError(f"identity source must be one of {', '.join(SOURCES)}")
        _check_url(self.endpoint, "the identity endpoint", https_only=self.kind == "service_fabric")
        if self.secret is not None:
            _check_header_value(self.secret, "the identity secret")

    def __repr__(self) -> str:
        secret = "<redacted>" if self.secret else None
        return (
            f"IdentitySource(kind={self.kind!r}, endpoint={self.endpoint!r}, secret={secret}, "
            f"server_thumbprint={self.server_thumbprint!r})"
        )

    __str__ = __repr__


def _thumbprint(value: str) -> str:
    normalised = re.sub(r"[\s:]", "", value).lower()
    if not _THUMBPRINT.fullmatch(normalised):
        raise ConfigError("IDENTITY_SERVER_THUMBPRINT must be a SHA-1 certificate thumbprint (40 hex digits)")
    return normalised


def environment_source(env: Mapping[str, str], *, arc_agent_present: bool = False) -> Optional[IdentitySource]:
    """The source the environment names, or None when nothing names one (only the IMDS default is left).

    Precedence as Azure's libraries (§1.1): Service Fabric, App Service, Azure ML, Azure Arc (its
    variables, or ``arc_agent_present`` with the agent's local endpoint), Cloud Shell
    (``MSI_ENDPOINT`` alone), then IMDS when ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` moves it. A
    variable counts only when it is non-empty.

    Raises:
        ConfigError: a named endpoint, secret or thumbprint is malformed (the error names the variable).
    """

    def get(name: str) -> Optional[str]:
        value = env.get(name)
        return value if isinstance(value, str) and value.strip() else None

    endpoint, header, msi_endpoint, msi_secret = (
        get(name) for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET")
    )
    thumbprint = get("IDENTITY_SERVER_THUMBPRINT")
    if endpoint and header:
        secret = _check_header_value(header, "IDENTITY_HEADER")
        if thumbprint:
            url = _check_url(endpoint, "IDENTITY_ENDPOINT", https_only=True)
            return IdentitySource("service_fabric", url, secret, _thumbprint(thumbprint))
        return IdentitySource("app_service", _check_url(endpoint, "IDENTITY_ENDPOINT"), secret)
    if msi_endpoint and msi_secret:
        secret = _check_header_value(msi_secret, "MSI_SECRET")
        return IdentitySource("azure_ml", _check_url(msi_endpoint, "MSI_ENDPOINT"), secret)
    if endpoint and get("IMDS_ENDPOINT"):
        return IdentitySource("azure_arc", _check_url(endpoint, "IDENTITY_ENDPOINT"))
    if arc_agent_present:
        return IdentitySource("azure_arc", ARC_DEFAULT_ENDPOINT)
    if msi_endpoint:
        return IdentitySource("cloud_shell", _check_url(msi_endpoint, "MSI_ENDPOINT"))
    pod_host = get("AZURE_POD_IDENTITY_AUTHORITY_HOST")
    if pod_host is None:
        return None
    host = _check_url(pod_host, "AZURE_POD_IDENTITY_AUTHORITY_HOST").rstrip("/")
    if "?" in host:
        raise ConfigError("AZURE_POD_IDENTITY_AUTHORITY_HOST must not have a query")
    return IdentitySource("imds", host + IMDS_TOKEN_PATH)


def detect_source(env: Mapping[str, str], *, arc_agent_present: bool = False) -> IdentitySource:
    """The source the environment names (see :func:`environment_source`), else IMDS at 169.254.169.254.

    ``arc_agent_present``: the driver found the Azure Arc agent (its ``himds`` program). ConfigError for
    a malformed endpoint, secret or thumbprint.
    """
    source = environment_source(env, arc_agent_present=arc_agent_present)
    return source or IdentitySource("imds", f"http://{IMDS_HOST}{IMDS_TOKEN_PATH}")


def _check_resource(resource: str) -> str:
    if not isinstance(resource, str) or not resource or len(resource) > 2000 or _UNSAFE.search(resource):
        raise ConfigError("the resource must be one non-empty URI or id without spaces")
    return resource


def resource_for(scopes: Sequence[str]) -> str:
    """The resource of one scope: ``https://management.azure.com/.default`` -> ``https://management.azure.com``.

    A bare resource (no ``/.default``) stays as it is.

    Raises:
        ConfigError: not exactly one scope, or an empty one, or one with spaces.
    """
    if isinstance(scopes, str) or len(scopes) != 1:
        raise ConfigError("a managed identity token is for exactly one resource: pass one scope")
    scope = scopes[0]
    resource = scope[: -len("/.default")] if isinstance(scope, str) and scope.endswith("/.default") else scope
    return _check_resource(resource)


def _with_query(url: str, pairs: Pairs) -> str:
    base, sep, query = url.partition("?")
    return f"{base}?{query + '&' if sep and query else ''}{encode_form(pairs)}"


def _selector(source: IdentitySource, identity: IdentityId) -> Pairs:
    if not identity.user_assigned:
        return ()
    name = _SELECTORS[source.kind].get(identity.kind)
    if name is None:
        raise ConfigError(f"the {source.kind} managed identity source does not accept a {identity.kind}")
    assert identity.value is not None
    return ((name, identity.value),)


def _source_headers(source: IdentitySource) -> Pairs:
    name = _SECRET_HEADER.get(source.kind)
    if name and not source.secret:
        raise ConfigError(f"the {source.kind} managed identity source needs its secret")
    metadata = () if source.kind in ("service_fabric", "azure_ml") else (("Metadata", "true"),)
    return (*(((name, source.secret or ""),) if name else ()), *metadata)


def token_request(source: IdentitySource, identity: IdentityId, resource: str, *, headers: Pairs = ()) -> HttpRequest:
    """The token request of ``source`` for ``identity`` and ``resource``; ``headers`` are appended.

    Cloud Shell is a form POST of ``resource``; the others a GET with ``api-version``, ``resource`` and
    the source's own name for a user-assigned identity.

    Raises:
        ConfigError: the source takes no identity of that kind (Service Fabric and Cloud Shell take
            no user-assigned identity; Azure ML only a client id), or a bad resource.
    """
    resource = _check_resource(resource)
    selector = _selector(source, identity)
    own = _source_headers(source)
    if source.kind == "cloud_shell":
        form_headers = (("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json"))
        return HttpRequest(
            "POST", source.endpoint, headers=(*own, *form_headers, *headers), form=(("resource", resource),)
        )
    query = (("api-version", _API_VERSION[source.kind]), ("resource", resource), *selector)
    return HttpRequest("GET", _with_query(source.endpoint, query), headers=(*own, *headers))


def probe_request(source: IdentitySource) -> HttpRequest:
    """A request that tells whether IMDS is there without getting a token.

    The token GET without the ``Metadata`` header, which IMDS refuses at once (400 ``bad_request_102``),
    as azure-identity probes (§1.5): send it with a short connect time-out and no retries, and judge the
    answer with :func:`is_probe_answer`. ConfigError for a source that is not IMDS.
    """
    if source.kind != "imds":
        raise ConfigError("only the IMDS source is probed; the others are named by the environment")
    query = (("api-version", _API_VERSION["imds"]), ("resource", "https://management.azure.com"))
    return HttpRequest("GET", _with_query(source.endpoint, query))


def is_probe_answer(response: HttpResponse) -> bool:
    """Whether a probe's answer means IMDS is there: any HTTP response does, with one exception.

    169.254.169.254 is link-local: where no IMDS exists, nothing answers and the probe fails to
    connect or times out, so an HTTP answer of any status (normally 400) comes from IMDS. The
    exception is a 403 mentioning "unreachable": Docker Desktop's proxy answering for an IMDS it
    cannot reach.
    """
    return not (response.status == 403 and b"unreachable" in response.body.lower())


@dataclass(frozen=True)
class ReadArcKey:
    """A flow step: read the Azure Arc key file at ``path`` (at most ``max_bytes``), send its text back."""

    path: str
    max_bytes: int = 4096


def arc_key_path(response: HttpResponse, *, allowed_folder: str) -> str:
    """The key file Azure Arc's 401 names in ``WWW-Authenticate: Basic realm=<path>``, if it may be read.

    The path must be absolute, name a ``.key`` file directly inside ``allowed_folder``, and have no
    ``..`` segment; it is checked by string normalisation only (Windows paths case-insensitively).

    Raises:
        ManagedIdentityError: no Basic challenge, or a path outside the allowed folder.
    """
    challenge = response.header("www-authenticate")
    match = _BASIC_REALM.fullmatch(challenge.strip()) if challenge else None
    if match is None:
        raise ManagedIdentityError("Azure Arc's 401 carries no `WWW-Authenticate: Basic realm=<key file>`")
    path = match.group(1).strip().strip('"')
    paths: Any = ntpath if re.match(r"[A-Za-z]:[\\/]|\\\\", allowed_folder) else posixpath
    parts = re.split(r"[\\/]" if paths is ntpath else "/", path)
    folder = paths.normcase(paths.normpath(allowed_folder))
    normal = paths.normpath(path)
    name = paths.basename(normal)
    if (
        _CONTROL.search(path)
        or ".." in parts
        or not paths.isabs(path)
        or (paths is ntpath and not ntpath.splitdrive(path)[0])
        or paths.normcase(paths.dirname(normal)) != folder
        or not name.lower().endswith(".key")
        or len(name) <= len(".key")
    ):
        raise ManagedIdentityError("Azure Arc's challenge names a key file outside the allowed folder; not reading it")
    return str(normal)


def default_arc_key_folder(platform: str, env: Optional[Mapping[str, str]] = None) -> str:
    """Where the Azure Arc agent writes key files on ``platform`` (a ``sys.platform`` value).

    Linux ``/var/opt/azcmagent/tokens``; Windows ``%ProgramData%\\AzureConnectedMachineAgent\\Tokens`` (from ``env``).

    Raises:
        ConfigError: Windows without ``ProgramData`` in ``env``.
        ManagedIdentityError: a platform Azure Arc does not run on.
    """
    if platform.startswith("linux"):
        return "/var/opt/azcmagent/tokens"
    if platform == "win32":
        program_data = next((v for k, v in (env or {}).items() if k.upper() == "PROGRAMDATA" and v.strip()), None)
        if program_data is None or not re.match(r"[A-Za-z]:[\\/]", program_data.strip()):
            raise ConfigError("ProgramData must be set to an absolute path to find the Azure Arc key folder")
        return ntpath.join(program_data.strip(), "AzureConnectedMachineAgent", "Tokens")
    raise ManagedIdentityError(f"Azure Arc runs on Linux and Windows only, not on {platform!r}")


def _arc_authorization(key: Any, max_bytes: int) -> str:
    text = key.strip() if isinstance(key, str) else ""
    if not re.fullmatch(r"[\x21-\x7e]+", text) or len(text) > max_bytes:
        raise ManagedIdentityError("the Azure Arc key file is not text, empty, too large or not a printable key")
    return "Basic " + text


def token_flow(
    source: IdentitySource,
    identity: IdentityId,
    resource: str,
    *,
    clock: Callable[[], float],
    allowed_arc_folder: str,
    headers: Pairs = (),
) -> Generator[Union[HttpRequest, ReadArcKey], Any, TokenSet]:
    """One managed identity token: yield the request, receive the response, return the tokens.

    Azure Arc answers the first request with a 401 challenge naming a key file: the flow yields
    :class:`ReadArcKey` (receive the file's text), then the same request with ``Authorization:
    Basic <key>``. The driver retries transient statuses (:data:`RETRY_STATUSES_IMDS`) itself.

    Raises:
        ConfigError: see :func:`token_request`.
        ManagedIdentityError: a (typed) refusal, a bad Arc challenge or key, or an Arc token for another identity.
        ResponseFormatError: an answer that is not a managed identity response.
    """
    request = token_request(source, identity, resource, headers=headers)
    response = yield request
    if source.kind == "azure_arc" and response.status == 401:
        step = ReadArcKey(arc_key_path(response, allowed_folder=allowed_arc_folder))
        key = yield step
        authorization = (("Authorization", _arc_authorization(key, step.max_bytes)),)
        response = yield replace(request, headers=(*request.headers, *authorization))
        if response.status == 401:
            raise ManagedIdentityError("Azure Arc refused the key file's content (HTTP 401)", status=401)
    tokens = parse_token_response(response, resource=resource, now=clock(), identity=identity)
    if source.kind == "azure_arc" and identity.user_assigned:
        assert identity.value is not None
        check_arc_echo(identity.kind, identity.value, tokens.raw)
    return tokens


def _epoch(value: Any) -> Optional[float]:
    """``expires_on`` as epoch seconds: a number, a numeric string, or App Service 2017's date string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if 0 < len(text) <= 12 and text.isascii() and text.isdigit():
            value = int(text)
        elif len(text) <= 40:
            for form in _DATE_FORMATS:
                try:
                    return datetime.strptime(text, form).timestamp()
                except ValueError:
                    continue
            return None
    if isinstance(value, (int, float)) and math.isfinite(value) and 0 < value < _EPOCH_LIMIT:
        return float(value)
    return None


def _expiry(body: Mapping[str, Any], now: float, claims: Optional[Mapping[str, Any]], status: int) -> float:
    if body.get("expires_in") is not None:
        seconds = number_of_seconds(body["expires_in"])
        if seconds is None:
            raise ResponseFormatError("token response field 'expires_in' is not a number of seconds", status=status)
        return now + seconds
    if body.get("expires_on") is not None:
        epoch = _epoch(body["expires_on"])
        if epoch is None:
            raise ResponseFormatError("token response field 'expires_on' is not a time", status=status)
        return epoch
    exp = claims.get("exp") if claims else None
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        return float(exp)
    raise ResponseFormatError("token response has neither 'expires_in' nor 'expires_on'", status=status)


def parse_token_response(
    response: HttpResponse, *, resource: str, now: float, identity: Optional[IdentityId] = None
) -> TokenSet:
    """Any managed identity source's answer as a :class:`TokenSet` for ``resource + "/.default"``.

    ``expires_in`` (number or numeric string) counts from ``now``; without it ``expires_on`` (epoch
    number, numeric string, or App Service 2017's date string) is used, then the token's ``exp``.
    ``refresh_in`` sets ``refresh_at``; without it a token living 2 hours or more refreshes at half-life.

    ``now`` is when it arrived; with ``identity`` user-assigned, "not found" is :class:`IdentityNotFound`
    (else :class:`NoIdentityAssigned`).

    Raises:
        ManagedIdentityError: (a subclass of) the endpoint's refusal.
        ResponseFormatError: an HTML page, an empty or non-JSON body, or a token answer missing its fields.
    """
    raise_for_identity_status(response, user_assigned=identity is not None and identity.user_assigned)
    body: Dict[str, Any] = parse_json_object(response)
    token = body.get("access_token")
    if not isinstance(token, str) or not token.strip():
        raise ResponseFormatError("managed identity response has no valid 'access_token'", status=response.status)
    token_type = body.get("token_type")
    try:
        claims: Optional[Dict[str, Any]] = unverified_claims(token)
    except TokenDecodeError:
        claims = None  # opaque access tokens are legitimate
    expires_at = _expiry(body, now, claims, response.status)
    refresh_in = number_of_seconds(body.get("refresh_in")) if body.get("refresh_in") is not None else None
    if refresh_in is None and expires_at - now >= _HALF_LIFE_FROM:
        refresh_in = (expires_at - now) / 2
    return TokenSet(
        access_token=token,
        token_type=token_type if isinstance(token_type, str) and token_type.strip() else "Bearer",
        scopes=(resource + "/.default",),
        expires_at=expires_at,
        refresh_at=None if refresh_in is None else now + refresh_in,
        claims=claims,
        raw=body,
    )
