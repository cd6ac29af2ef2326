"""The ``entra_emulator`` pytest fixture, as an application's own test suite meets it.

Each test writes a user's project with pytester (a test module and, for TLS, an ini file; never
a conftest) and runs pytest on it in a new process, as the user would: the fixture comes from the
installed ``pytest11`` entry point. (In process, pytester's restored ``sys.modules`` would make
cryptography import twice, which its Rust bindings refuse.)
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

SIGN_IN = """
import oauth_core


def sign_in(entra_emulator, **options):
    username, password = entra_emulator.users[0]
    client = oauth_core.EntraClient(
        entra_emulator.public_client_id, entra_emulator.tenant_id, authority_host=entra_emulator.url, **options
    )
    with client:
        return client.acquire_by_password(username, password)


def token_requests(entra_emulator):
    return [r for r in entra_emulator.requests if r["endpoint"] == "token"]
"""


def user_module(body: str) -> str:
    return SIGN_IN + textwrap.dedent(body)


def test_a_users_test_signs_in_and_finds_the_grant(pytester: pytest.Pytester) -> None:
    """The issue's check: no conftest, the fixture from the entry point."""
    pytester.makepyfile(
        test_app=user_module(
            """
            def test_password_sign_in(entra_emulator):
                tokens = sign_in(entra_emulator)
                assert tokens.claims["tid"] == entra_emulator.tenant_id
                [grant] = token_requests(entra_emulator)
                assert grant["grant_type"] == "password" and grant["status"] == 200
                assert grant["client_id"] == entra_emulator.public_client_id
                assert entra_emulator.users[0][1] not in repr(entra_emulator.requests)  # no secrets
                assert tokens.access_token not in repr(entra_emulator.requests)


            def test_each_test_sees_its_own_requests(entra_emulator):
                assert entra_emulator.requests == []
                grants = [r["grant_type"] for r in entra_emulator.all_requests if r["endpoint"] == "token"]
                assert grants == ["password"]


            def test_the_facts(entra_emulator):
                assert entra_emulator.url.startswith("http://127.0.0.1:") and entra_emulator.ca_bundle is None
                assert entra_emulator.authority == f"{entra_emulator.url}/{entra_emulator.tenant_id}"
                assert entra_emulator.public_client_id != entra_emulator.confidential_client_id
                client = oauth_core.EntraClient(
                    entra_emulator.confidential_client_id,
                    entra_emulator.tenant_id,
                    authority_host=entra_emulator.url,
                    client_secret=entra_emulator.client_secret,
                )
                with client:
                    client.acquire_for_client(scopes=["https://management.azure.com/.default"])
                [grant] = token_requests(entra_emulator)
                assert grant["grant_type"] == "client_credentials"
                assert grant["client_id"] == entra_emulator.confidential_client_id
                assert entra_emulator.client_secret not in repr(entra_emulator.requests)
                assert entra_emulator.emulator.tenant_id == entra_emulator.tenant_id
                assert all(isinstance(u, tuple) and len(u) == 2 for u in entra_emulator.users)
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_faults_in_the_clis_text_form(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_app=user_module(
            """
            import pytest

            from oauth_core.core.errors import ConfigError


            def test_two_429s_then_a_token(entra_emulator):
                entra_emulator.fault("token:429x2:retry-after=0")
                sign_in(entra_emulator)
                assert [r["status"] for r in token_requests(entra_emulator)] == [429, 429, 200]


            def test_a_fault_left_queued_does_not_leak(entra_emulator):
                entra_emulator.fault("token:503x3")


            def test_the_next_test_starts_clean(entra_emulator):
                sign_in(entra_emulator)
                assert [r["status"] for r in token_requests(entra_emulator)] == [200]


            def test_a_dropped_connection_has_no_status(entra_emulator):
                entra_emulator.fault("token:drop-before")
                sign_in(entra_emulator)  # retried: nothing was sent
                assert [r["status"] for r in token_requests(entra_emulator)] == [None, 200]


            @pytest.mark.parametrize("spec", ["bogus", "nope:429", "token:429x0"])
            def test_a_bad_spec_is_refused(entra_emulator, spec):
                with pytest.raises(ConfigError):
                    entra_emulator.fault(spec)
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=7)


TLS_TEST = """
import ssl
from pathlib import Path

import httpx


def test_https(entra_emulator):
    assert entra_emulator.url.startswith("https://127.0.0.1:")
    assert "BEGIN CERTIFICATE" in Path(entra_emulator.ca_bundle).read_text()
    assert isinstance(entra_emulator.ssl_context(), ssl.SSLContext)
    tokens = sign_in(entra_emulator, http_client=httpx.Client(verify=entra_emulator.ssl_context()))
    assert tokens.access_token
    assert [r["status"] for r in token_requests(entra_emulator)] == [200]
"""


def test_tls_from_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nentra_emulator_tls = true\n")
    pytester.makepyfile(test_app=user_module(TLS_TEST))
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_tls_from_the_command_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app=user_module(TLS_TEST))
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--entra-emulator-tls").assert_outcomes(passed=1)


def test_plain_http_has_no_ssl_context(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_app="""
        import pytest

        from oauth_core.core.errors import ConfigError


        def test_http(entra_emulator):
            assert entra_emulator.ca_bundle is None
            with pytest.raises(ConfigError, match="entra_emulator_tls"):
                entra_emulator.ssl_context()
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_options_are_documented_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--entra-emulator-tls*", "*entra_emulator_tls*"])


def test_without_the_crypto_extra_the_fixture_says_which_extra(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_app="""
        import sys

        sys.modules["cryptography"] = None  # as if the crypto extra were not installed


        def test_needs_it(entra_emulator):
            pass


        def test_does_not(entra_emulator_unused=None):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    output = result.stdout.str()
    assert "the entra_emulator fixture needs the crypto extra" in output
    assert "pip install 'oauth-core[crypto]'" in output
    assert "Traceback" not in output and "During handling" not in output


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, oauth_core.testing.pytest_plugin as p; import oauth_core.testing; "
        "heavy = [m for m in ('httpx', 'cryptography', 'jwt', 'tenacity', 'oauth_core.emulator', "
        "'oauth_core.testing.fixture', 'oauth_core.drivers') if m in sys.modules]; "
        "assert not heavy, heavy; assert p.entra_emulator"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_package_registers_the_plugin() -> None:
    from importlib.metadata import entry_points

    found = [e for e in entry_points(group="pytest11") if e.name == "oauth_core"]
    assert [e.value for e in found] == ["oauth_core.testing.pytest_plugin"]
