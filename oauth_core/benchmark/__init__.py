"""``oauth-core bench``: time token exchanges against any authority, one request per measurement.

Each exchange is one token-endpoint POST made by the client's own builder
(:meth:`~oauth_core.core.flows.ClientBase.token_request` over the grants of :mod:`oauth_core.core.grants`)
and read by :func:`~oauth_core.core.messages.parse_token_response`. It is sent exactly once, with no
retry layer: a 429 is a measurement (throttling, with its ``Retry-After``), after which every
worker pauses for what the service asked, capped, before its next request.

Phases come from httpx's ``trace`` request extension (httpcore's events), in milliseconds:

- ``connect``: ``connection.connect_tcp`` started to complete. httpcore resolves the host name
  inside it, so connect *includes* DNS. ``dns`` is a separate ``socket.getaddrinfo`` of the host,
  timed after each exchange that opened a connection (outside the timed window): an estimate.
- ``tls``: ``connection.start_tls``.
- ``ttfb``: ``http11.send_request_headers.started`` to ``http11.receive_response_headers.complete``
  (writing the request, the service's time, one round trip).
- ``total``: from handing the request to httpx to the last byte of the body.

Each worker thread owns one ``httpx.Client`` and keeps its connection alive, so an exchange that
reused a connection shows 0 for dns, connect and tls. Tokens are never printed, logged or put
into the results; the newest token set can be saved to the token cache once, at the end.

The package: :mod:`.model` (settings, grants, samples, results), :mod:`.engine` (the worker
threads) and :mod:`.report` (statistics, JSON, text, progress bar, plot); every name the CLI uses
is re-exported here.
"""

from __future__ import annotations

from .engine import (
    keep_newest_tokens as keep_newest_tokens,
    run_benchmark as run_benchmark,
    throttle_warning as throttle_warning,
)
from .model import (
    GRANTS as GRANTS,
    BenchmarkStopped as BenchmarkStopped,
    BenchResult as BenchResult,
    BenchSettings as BenchSettings,
    Grant as Grant,
    Sample as Sample,
    client_credentials_bench_grant as client_credentials_bench_grant,
    code_replay_grant as code_replay_grant,
    password_bench_grant as password_bench_grant,
    refresh_bench_grant as refresh_bench_grant,
)
from .report import (
    ProgressBar as ProgressBar,
    plot_result as plot_result,
    render_text as render_text,
    require_plotting as require_plotting,
    result_json as result_json,
)

__all__ = [
    "GRANTS",
    "BenchResult",
    "BenchSettings",
    "BenchmarkStopped",
    "Grant",
    "ProgressBar",
    "Sample",
    "code_replay_grant",
    "client_credentials_bench_grant",
    "keep_newest_tokens",
    "password_bench_grant",
    "plot_result",
    "refresh_bench_grant",
    "render_text",
    "require_plotting",
    "result_json",
    "run_benchmark",
    "throttle_warning",
]
