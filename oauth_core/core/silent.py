"""Pieces of the silent flows: routing hints, cache keys of non-user tokens, and refusal bookkeeping."""

from __future__ import annotations

import functools
import hashlib
from typing import Any, Generator, List, Optional, Tuple, Union

from .cache_rules import Save, note_attempt
from .errors import ConfigError, InteractionRequired, InvalidGrant

__all__ = ["anchor_mailbox", "interaction_required", "noted", "on_behalf_of_account"]


def anchor_mailbox(account: Optional[str]) -> Optional[Tuple[str, str]]:
    """``X-AnchorMailbox: Oid:<uid>@<utid>`` for a user account id ``uid.utid`` (None for others).

    Entra uses it to route a silent request to the account's home data when its backup
    authentication service is the one answering.
    """
    if not account or account.count(".") != 1:
        return None
    uid, utid = account.split(".")
    if not uid or not utid or account.startswith("obo:"):
        return None
    return ("x-anchormailbox", f"Oid:{uid}@{utid}")


def on_behalf_of_account(user_assertion: str) -> str:
    """The cache key part of an on-behalf-of token: a hash of the caller's assertion, never the assertion.

    Keying by the assertion (not by the user it names) means a forged token claiming someone
    else's identity can never be served that person's cached token.
    """
    return "obo:" + hashlib.sha256(user_assertion.encode("utf-8")).hexdigest()


def noted(key: str, at: float, refused: Optional[List[int]]) -> Generator[Save, Any, None]:
    """Record a failed refresh; best effort: a cache that cannot take it costs one more attempt later."""
    try:
        yield Save(functools.partial(note_attempt, key=key, at=at, refused=refused))
    except ConfigError:
        pass


def interaction_required(exc: Union[InvalidGrant, InteractionRequired]) -> InteractionRequired:
    return InteractionRequired(
        exc.error,
        exc.error_description,
        error_codes=exc.error_codes,
        suberror=exc.suberror,
        trace_id=exc.trace_id,
        correlation_id=exc.correlation_id,
        claims=exc.claims,
        status=exc.status,
    )
