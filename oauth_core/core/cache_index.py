"""An index of a cache state, built once per state: what a hit needs, in constant time.

Caches publish a new state object on every change (copy-on-write), so an index kept per state
object stays true for as long as that state is the one read.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

__all__ = ["index_of"]

State = Dict[str, Any]


class _Index:
    """What a hit needs from a state in constant time: the accounts of each host and client, by
    id and by username, and the access-token keys of each account (for superset scopes)."""

    __slots__ = ("by_client", "keys_of", "named")

    def __init__(self, state: State) -> None:
        self.by_client: Dict[Tuple[Any, Any], List[Dict[str, Any]]] = {}
        for record in state["accounts"].values():
            if (  # a hand-edited record of another shape is not an account of anyone
                isinstance(record, dict)
                and isinstance(record.get("account"), str)
                and isinstance(record.get("host"), str)
                and isinstance(record.get("client_id"), str)
            ):
                self.by_client.setdefault((record.get("host"), record.get("client_id")), []).append(record)
        self.named: Dict[Tuple[Any, Any, Any], str] = {}  # (host, client, account id or username) -> account
        for (host, client), found in self.by_client.items():
            found.sort(key=lambda a: (str(a.get("username")), str(a.get("account"))))
            for record in found:
                for name in (record.get("account"), record.get("username")):
                    if isinstance(name, str) and name:
                        self.named.setdefault((host, client, name), str(record["account"]))
        self.keys_of: Dict[str, List[str]] = {}
        for key in state["access_tokens"]:
            self.keys_of.setdefault(key.rpartition("|")[0], []).append(key)


_INDEXES: Dict[int, Tuple[State, Tuple[int, int, int, int], _Index]] = {}


def index_of(state: State) -> _Index:
    """The index of ``state``, built once per state (caches publish a new state on every change)."""
    marks = (id(state["accounts"]), len(state["accounts"]), id(state["access_tokens"]), len(state["access_tokens"]))
    held = _INDEXES.get(id(state))
    if held is not None and held[0] is state and held[1] == marks:
        return held[2]
    index = _Index(state)
    if len(_INDEXES) >= 16:
        _INDEXES.clear()
    _INDEXES[id(state)] = (state, marks, index)
    return index
