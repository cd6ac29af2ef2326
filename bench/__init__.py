"""Benchmarks for oauth_core against MSAL Python, authlib, plain httpx and the raw socket floor.

Run ``python -m bench`` (full, a few minutes) or ``python -m bench --quick`` (a smoke run in
seconds) from the repository root after ``pip install -e '.[bench]'``. Modules:

``entra``        the pre-rendered Entra refresh response (body, headers, cookies)
``server``       the fast token server and the emulator, each in its own process
``clients``      one runner per client, doing the refresh_token grant as its users would
                 (shared machinery in ``runner_base``, the MSAL rows in ``msal_runner``)
``latency``      interleaved blocks of sequential exchanges (socket and in-process)
``decode``       unverified claims decode, speed and malformed-input rejections
``coldstart``    whole-process wall time and peak RSS
``concurrency``  sequential, threads and ``asyncio.gather``, with and without server delay
``stats``, ``report``, ``run``   percentiles; Markdown, JSON, plots, RESULTS.md; the command line
``reliability``  fuzzing, injected faults, killed cache writers, secret leaks (``python -m bench.reliability``)
``identity``     the default chain on a host without managed identity, and managed identity token
                 latency, beside azure-identity and MSAL (``python -m bench.identity``; the
                 clients run in ``identity_worker`` processes)
``cache_scaling`` a silent cache hit with 1, 100 and 1000 accounts cached: memory, file and Redis
                 caches beside MSAL's ``acquire_token_silent`` (``python -m bench.cache_scaling``)
``fleet``        N processes sharing one user's token across its expiries, 50 ms token endpoint:
                 refreshes per expiry, the expiry-crossing call's latency, L1/L2 hits; file and
                 Redis caches beside MSAL (``python -m bench.fleet``; the processes run
                 ``fleet_worker``; ``redis_server`` starts a private ``redis-server``)
"""
