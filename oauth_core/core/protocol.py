"""The sans-I/O protocol core in one import: messages, scopes, grants and redaction.

Nothing here touches a socket or imports httpx. The code lives in four modules, re-exported here
so ``from oauth_core.core.protocol import ...`` keeps working:

- :mod:`~oauth_core.core.messages`: :class:`HttpRequest`, :class:`HttpResponse`, :class:`TokenSet`
  and the parsers of token and JWKS responses;
- :mod:`~oauth_core.core.scopes`: :func:`normalize_scopes` and :data:`DEFAULT_SCOPES`;
- :mod:`~oauth_core.core.grants`: each grant's form fields, :func:`build_token_request` and
  :func:`token_flow`, the generator the sync and async drivers run;
- :mod:`~oauth_core.core.redaction`: :func:`redacted_snippet` and :func:`terminal_safe`.
"""

from __future__ import annotations

from .grants import (
    CLIENT_ASSERTION_TYPE as CLIENT_ASSERTION_TYPE,
    Claims as Claims,
    TokenFlow as TokenFlow,
    authorization_code_grant as authorization_code_grant,
    build_token_request as build_token_request,
    claims_parameter as claims_parameter,
    client_credentials_grant as client_credentials_grant,
    on_behalf_of_grant as on_behalf_of_grant,
    password_grant as password_grant,
    refresh_token_grant as refresh_token_grant,
    token_flow as token_flow,
    with_claims as with_claims,
)
from .messages import (
    HttpRequest as HttpRequest,
    HttpResponse as HttpResponse,
    Pairs as Pairs,
    TokenSet as TokenSet,
    encode_form as encode_form,
    jwks_request as jwks_request,
    number_of_seconds as number_of_seconds,
    parse_json_object as parse_json_object,
    parse_jwks_response as parse_jwks_response,
    parse_token_response as parse_token_response,
)
from .redaction import (
    SECRET_FIELDS as SECRET_FIELDS,
    redacted_snippet as redacted_snippet,
    terminal_safe as terminal_safe,
)
from .scopes import (
    DATABRICKS_SCOPE as DATABRICKS_SCOPE,
    DEFAULT_SCOPES as DEFAULT_SCOPES,
    OIDC_SCOPES as OIDC_SCOPES,
    normalize_scopes as normalize_scopes,
)

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "DATABRICKS_SCOPE",
    "DEFAULT_SCOPES",
    "OIDC_SCOPES",
    "SECRET_FIELDS",
    "HttpRequest",
    "HttpResponse",
    "Pairs",
    "TokenFlow",
    "TokenSet",
    "authorization_code_grant",
    "build_token_request",
    "client_credentials_grant",
    "encode_form",
    "jwks_request",
    "normalize_scopes",
    "number_of_seconds",
    "parse_json_object",
    "parse_jwks_response",
    "parse_token_response",
    "password_grant",
    "redacted_snippet",
    "refresh_token_grant",
    "terminal_safe",
    "token_flow",
]
