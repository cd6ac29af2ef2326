"""The command line's exit codes, and which one each library exception means.

0 success; 1 the identity service refused; 2 usage or bad input; 3 network or service failure
after retries, a malformed service response, or throttling (the service asked to wait); 4 a
security check failed (state, nonce, signature, insecure authority); 130 interrupted; 70 an
internal error.

The library's exceptions know nothing of exit codes: the mapping lives here, keyed by class.
"""

from __future__ import annotations

from typing import Mapping, Type, Union

from ..core.errors import (
    ConfigError,
    InsecureAuthorityError,
    InteractionTimeout,
    OAuthCoreError,
    OAuthError,
    RedirectError,
    ResponseFormatError,
    SecurityCheckError,
    SignatureVerificationError,
    TokenDecodeError,
    TokensNotSaved,
    TransportError,
)

__all__ = [
    "EXIT_CODES",
    "EXIT_CODES_BY_NAME",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_SECURITY",
    "EXIT_SERVICE",
    "EXIT_USAGE",
    "exit_code_for",
]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_SERVICE = 3
EXIT_SECURITY = 4
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

# Looked up along the exception's MRO, so the most specific class listed wins
# (SignatureVerificationError is a TokenDecodeError, InsecureAuthorityError a ConfigError).
EXIT_CODES: Mapping[Type[OAuthCoreError], int] = {
    OAuthCoreError: EXIT_USAGE,
    ConfigError: EXIT_USAGE,
    InsecureAuthorityError: EXIT_SECURITY,
    TokensNotSaved: EXIT_OK,  # the tokens are printed rather than lost
    RedirectError: EXIT_USAGE,
    SecurityCheckError: EXIT_SECURITY,
    TokenDecodeError: EXIT_USAGE,
    SignatureVerificationError: EXIT_SECURITY,
    InteractionTimeout: EXIT_SERVICE,
    TransportError: EXIT_SERVICE,
    ResponseFormatError: EXIT_SERVICE,
    OAuthError: EXIT_REFUSED,
}

# Classes of modules a command may never load, by ``module.QualName``: naming them here keeps
# ``oauth-core token`` from importing the managed identity, throttling and federation modules.
EXIT_CODES_BY_NAME: Mapping[str, int] = {
    "oauth_core.core.throttle.Throttled": EXIT_SERVICE,  # the service asked to wait: the hint says until when
    "oauth_core.core.identity_errors.ManagedIdentityError": EXIT_REFUSED,
    "oauth_core.core.identity_errors.IdentityUnavailable": EXIT_SERVICE,
    "oauth_core.core.managed.CredentialUnavailable": EXIT_REFUSED,
    "oauth_core.core.wstrust_errors.FederatedSignInFailed": EXIT_REFUSED,  # the federation refused the password
    "oauth_core.core.wstrust_errors.FederationNotSupported": EXIT_REFUSED,  # no password taken there
}


def _is_benchmark_stop(cls: type) -> bool:
    """True for the benchmark's "the service kept refusing" error (exit 1).

    Matched by name and package rather than imported: importing the benchmark here would load
    httpx for every command, and an instance of it exists only once the benchmark has run.
    """
    return any(
        klass.__name__ == "BenchmarkStopped" and klass.__module__.startswith("oauth_core.benchmark")
        for klass in cls.__mro__
    )


def exit_code_for(error: Union[BaseException, Type[BaseException]]) -> int:
    """The exit code of an exception (or exception class) the command line reports.

    Exceptions outside oauth_core's tree are internal errors (70).
    """
    cls = error if isinstance(error, type) else type(error)
    if _is_benchmark_stop(cls):
        return EXIT_REFUSED
    for klass in cls.__mro__:
        if klass in EXIT_CODES:
            return EXIT_CODES[klass]
        named = EXIT_CODES_BY_NAME.get(f"{klass.__module__}.{klass.__qualname__}")
        if named is not None:
            return named
    return EXIT_INTERNAL
