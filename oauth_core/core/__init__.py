"""The pure core: messages, grants, authorize, device code, PKCE, authority, claims, errors, flows.

Nothing here does I/O: no sockets, no files, no clocks or sleeps of its own. Flows are
generators that yield what they need and get the answers sent back by a driver.
"""
