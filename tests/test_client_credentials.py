"""Client credentials for service principals: a secret or a certificate (client assertion JWT).

The assertion is decoded and checked field by field; both credentials run against the emulator
(a freshly generated certificate registered on a confidential client) with the sync and async
clients and the CLI (stdin, environment, --certificate; never argv).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import io
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest
import respx

pytest.importorskip("cryptography", reason="certificates and the emulator need the crypto extra")

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from oauth_core import AsyncEntraClient, ClientCertificate, EntraClient
from oauth_core.cli import main
from oauth_core.core.authority import Authority
from oauth_core.core.errors import ConfigError, InvalidClient, InvalidResource
from oauth_core.core.protocol import (
    CLIENT_ASSERTION_TYPE,
    DATABRICKS_SCOPE,
    build_token_request,
    client_credentials_grant,
)
from oauth_core.drivers.stores import MemoryTokenCache, accounts
from oauth_core.emulator import Client, Emulator, EmulatorConfig

REPO = Path(__file__).resolve().parent.parent
SECRET_CLIENT = "c0f1d3e0-5a7b-4c2d-8e9f-0a1b2c3d4e5f"
SECRET = "emulator-client-secret"
CERT_CLIENT = "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b"
GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
CREDENTIAL_ENV = ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD")
TOKEN_JSON_KEYS = {
    "token_type",
    "access_token",
    "refresh_token",
    "id_token",
    "scope",
    "expires_in",
    "expires_at",
    "claims",
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Pem:
    key: rsa.RSAPrivateKey
    key_pem: bytes
    cert_pem: bytes
    der: bytes


def make_pem(key: Optional[Any] = None) -> Pem:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oauth-core test service principal")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Pem(
        key, key_pem, cert.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.DER)
    )


@pytest.fixture(scope="module")
def pem() -> Pem:
    return make_pem()


@pytest.fixture
def pem_file(pem: Pem, tmp_path: Path) -> Path:
    path = tmp_path / "sp.pem"
    path.write_bytes(pem.cert_pem + pem.key_pem)  # certificate first: the order must not matter
    return path


@pytest.fixture(scope="module")
def emu(pem: Pem) -> Iterator[Emulator]:
    base = EmulatorConfig.default()
    clients = (*base.clients, Client(CERT_CLIENT, "certificate app", (), certificates=(pem.cert_pem.decode(),)))
    with Emulator(replace(base, clients=clients)) as running:
        yield running


@pytest.fixture(autouse=True)
def no_credentials_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)


def client_credentials_posts(emu: Emulator) -> int:
    return emu.count("token", grant_type="client_credentials")


def check_app_token(access_token: str, client_id: str, appidacr: str) -> Dict[str, Any]:
    claims: Dict[str, Any] = jwt.decode(access_token, options={"verify_signature": False})
    assert claims["idtyp"] == "app" and "scp" not in claims
    assert (claims["appid"], claims["appidacr"]) == (client_id, appidacr)
    return claims


# -- the certificate and its assertion -------------------------------------------------------------


def test_assertion_header_and_claims(pem: Pem) -> None:
    certificate = ClientCertificate.from_pem(pem.key_pem, pem.cert_pem)
    audience = f"https://login.microsoftonline.com/{uuid.UUID(int=1)}/oauth2/v2.0/token"
    signed = certificate.assertion(CERT_CLIENT, audience, now=1_700_000_000.7)
    header = jwt.get_unverified_header(signed)
    assert header == {"alg": "PS256", "typ": "JWT", "x5t#S256": b64url(hashlib.sha256(pem.der).digest())}
    claims = jwt.decode(
        signed, pem.key.public_key(), algorithms=["PS256"], audience=audience, options={"verify_exp": False}
    )
    assert claims["iss"] == claims["sub"] == CERT_CLIENT
    assert (claims["nbf"], claims["iat"], claims["exp"]) == (1_700_000_000, 1_700_000_000, 1_700_000_600)
    assert uuid.UUID(claims["jti"]).version == 4
    assert set(claims) == {"aud", "iss", "sub", "jti", "nbf", "iat", "exp"}
    assert certificate.assertion(CERT_CLIENT, audience, now=1_700_000_000)  # a new jti each time
    assert (
        jwt.decode(certificate.assertion(CERT_CLIENT, audience, now=0), options={"verify_signature": False})["jti"]
        != claims["jti"]
    )


def test_rs256_adds_the_sha1_thumbprint(pem: Pem) -> None:
    certificate = ClientCertificate.from_pem(pem.key_pem, pem.cert_pem, algorithm="RS256")
    signed = certificate.assertion(CERT_CLIENT, "https://example.test/token", now=0)
    header = jwt.get_unverified_header(signed)
    assert header["alg"] == "RS256"
    assert header["x5t"] == b64url(hashlib.sha1(pem.der).digest()) == certificate.thumbprint_sha1
    assert header["x5t#S256"] == certificate.thumbprint_sha256


def test_from_file_and_repr(pem: Pem, pem_file: Path) -> None:
    certificate = ClientCertificate.from_file(pem_file)
    assert certificate.certificate_der == pem.der
    text = repr(certificate)
    assert certificate.thumbprint_sha256 in text and "PRIVATE" not in text and "private_key" not in text


def test_encrypted_key(pem: Pem, tmp_path: Path) -> None:
    encrypted = pem.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pem-password"),
    )
    path = tmp_path / "encrypted.pem"
    path.write_bytes(encrypted + pem.cert_pem)
    assert ClientCertificate.from_file(path, b"pem-password").certificate_der == pem.der
    with pytest.raises(ConfigError, match="password"):
        ClientCertificate.from_file(path)
    with pytest.raises(ConfigError, match="wrong password"):
        ClientCertificate.from_file(path, b"not-it")


def test_bad_certificates_are_config_errors(pem: Pem, tmp_path: Path) -> None:
    other = make_pem()
    with pytest.raises(ConfigError, match="does not belong"):
        ClientCertificate.from_pem(pem.key_pem, other.cert_pem)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_pem = make_pem(ec_key)
    with pytest.raises(ConfigError, match="RSA"):
        ClientCertificate.from_pem(ec_pem.key_pem, ec_pem.cert_pem)
    with pytest.raises(ConfigError):
        ClientCertificate.from_pem(b"not a key", pem.cert_pem)
    with pytest.raises(ConfigError, match="no PEM certificate"):
        ClientCertificate.from_pem(pem.key_pem, b"")
    with pytest.raises(ConfigError, match="PS256 or RS256"):
        ClientCertificate.from_pem(pem.key_pem, pem.cert_pem, algorithm="HS256")
    only_cert = tmp_path / "cert-only.pem"
    only_cert.write_bytes(pem.cert_pem)
    with pytest.raises(ConfigError, match="no PEM private key"):
        ClientCertificate.from_file(only_cert)
    with pytest.raises(ConfigError, match="cannot read"):
        ClientCertificate.from_file(tmp_path / "missing.pem")


def test_missing_cryptography_names_the_extra(pem: Pem, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cryptography", None)
    with pytest.raises(ConfigError, match=r"oauth-core\[crypto\]"):
        ClientCertificate.from_pem(pem.key_pem, pem.cert_pem)


# -- the one token builder --------------------------------------------------------------------------


def test_builder_sends_the_assertion_instead_of_a_secret() -> None:
    authority = Authority.of(None, "contoso.onmicrosoft.com")
    request = build_token_request(
        authority, CERT_CLIENT, client_credentials_grant(), scopes=[DATABRICKS_SCOPE], client_assertion="a.b.c"
    )
    assert request.form[-2:] == (("client_assertion_type", CLIENT_ASSERTION_TYPE), ("client_assertion", "a.b.c"))
    assert "client_secret" not in dict(request.form)
    assert "a.b.c" not in repr(request) and "client_assertion='<redacted>'" in repr(request)
    with pytest.raises(ConfigError):
        build_token_request(
            authority,
            CERT_CLIENT,
            client_credentials_grant(),
            scopes=[DATABRICKS_SCOPE],
            client_secret="s",
            client_assertion="a",
        )
    with pytest.raises(ConfigError):
        build_token_request(
            authority, CERT_CLIENT, client_credentials_grant(), scopes=[DATABRICKS_SCOPE], client_assertion=""
        )


def test_each_request_gets_a_fresh_assertion(pem: Pem) -> None:
    certificate = ClientCertificate.from_pem(pem.key_pem, pem.cert_pem)
    url = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    body = {"token_type": "Bearer", "expires_in": 3599, "access_token": "opaque-app-token"}
    with respx.mock() as router:
        route = router.post(url).mock(return_value=httpx.Response(200, json=body))
        with EntraClient(CERT_CLIENT, "contoso.onmicrosoft.com", client_certificate=certificate) as client:
            client.acquire_for_client()
            client.acquire_for_client()
    forms = [dict(parse_qsl(call.request.content.decode())) for call in route.calls]
    assert [f["grant_type"] for f in forms] == ["client_credentials"] * 2
    assert [f["scope"] for f in forms] == [DATABRICKS_SCOPE] * 2  # no OIDC scopes added
    assert all("client_secret" not in f and f["client_assertion_type"] == CLIENT_ASSERTION_TYPE for f in forms)
    jtis = [jwt.decode(f["client_assertion"], options={"verify_signature": False})["jti"] for f in forms]
    assert jtis[0] != jtis[1]
    claims = jwt.decode(forms[0]["client_assertion"], options={"verify_signature": False})
    assert claims["aud"] == url


# -- validation before sending ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant", "scopes", "credential", "message"),
    [
        ("contoso.onmicrosoft.com", "https://graph.microsoft.com/User.Read", {"client_secret": "s"}, "/.default"),
        ("contoso.onmicrosoft.com", [GRAPH_DEFAULT, DATABRICKS_SCOPE], {"client_secret": "s"}, "exactly one"),
        ("contoso.onmicrosoft.com", [DATABRICKS_SCOPE, "openid"], {"client_secret": "s"}, "exactly one"),
        ("contoso.onmicrosoft.com", "/.default", {"client_secret": "s"}, "/.default"),
        ("organizations", None, {"client_secret": "s"}, "tenant"),
        ("common", None, {"client_secret": "s"}, "tenant"),
        ("consumers", None, {"client_secret": "s"}, "tenant"),
        ("contoso.onmicrosoft.com", None, {}, "client_secret or a client_certificate"),
    ],
)
def test_refused_before_anything_is_sent(tenant: str, scopes: Any, credential: Dict[str, str], message: str) -> None:
    with respx.mock() as router:
        with EntraClient(SECRET_CLIENT, tenant, **credential) as client:  # type: ignore[arg-type]
            with pytest.raises(ConfigError, match=message):
                client.acquire_for_client(scopes=scopes)
        assert len(router.calls) == 0


def test_secret_and_certificate_together_are_refused(pem: Pem) -> None:
    certificate = ClientCertificate.from_pem(pem.key_pem, pem.cert_pem)
    with pytest.raises(ConfigError, match="one client credential"):
        EntraClient(CERT_CLIENT, "contoso.onmicrosoft.com", client_secret="s", client_certificate=certificate)


# -- against the emulator: sync and async ----------------------------------------------------------


def test_secret_sync(emu: Emulator) -> None:
    before = client_credentials_posts(emu)
    cache = MemoryTokenCache()
    with EntraClient(SECRET_CLIENT, emu.tenant_id, authority_host=emu.url, client_secret=SECRET, cache=cache) as client:
        tokens = client.acquire_for_client()
        graph = client.acquire_for_client(scopes=GRAPH_DEFAULT)
    assert client_credentials_posts(emu) - before == 2
    assert tokens.scopes == (DATABRICKS_SCOPE,) and tokens.refresh_token is None and tokens.id_token is None
    check_app_token(tokens.access_token, SECRET_CLIENT, "1")
    assert check_app_token(graph.access_token, SECRET_CLIENT, "1")["aud"] == "https://graph.microsoft.com"
    [account] = accounts(cache.snapshot())
    assert account["account"] == "app" and account["client_id"] == SECRET_CLIENT
    assert len(cache.snapshot()["access_tokens"]) == 2 and cache.snapshot()["refresh_tokens"] == {}


@pytest.mark.parametrize("algorithm", ["PS256", "RS256"])
def test_certificate_sync(emu: Emulator, pem: Pem, algorithm: str) -> None:
    certificate = ClientCertificate.from_pem(pem.key_pem, pem.cert_pem, algorithm=algorithm)
    with EntraClient(CERT_CLIENT, emu.tenant_id, authority_host=emu.url, client_certificate=certificate) as client:
        tokens = client.acquire_for_client()
    check_app_token(tokens.access_token, CERT_CLIENT, "2")


def test_refusals_from_the_service(emu: Emulator, pem: Pem) -> None:
    with EntraClient(SECRET_CLIENT, emu.tenant_id, authority_host=emu.url, client_secret="wrong") as client:
        with pytest.raises(InvalidClient) as caught:
            client.acquire_for_client()
    assert caught.value.error_codes == (7000215,) and "wrong" not in str(caught.value)
    stranger = make_pem()
    unregistered = ClientCertificate.from_pem(stranger.key_pem, stranger.cert_pem)
    with EntraClient(CERT_CLIENT, emu.tenant_id, authority_host=emu.url, client_certificate=unregistered) as client:
        with pytest.raises(InvalidClient) as caught:
            client.acquire_for_client()
    assert caught.value.error_codes == (700027,)
    unknown_resource = "11111111-2222-3333-4444-555555555555/.default"
    with EntraClient(SECRET_CLIENT, emu.tenant_id, authority_host=emu.url, client_secret=SECRET) as client:
        with pytest.raises(InvalidResource) as caught:
            client.acquire_for_client(scopes=unknown_resource)
    assert caught.value.error_codes == (500011,)


def test_async_secret_and_certificate(emu: Emulator, pem: Pem) -> None:
    certificate = ClientCertificate.from_pem(pem.key_pem, pem.cert_pem)

    async def run() -> List[str]:
        async with (
            AsyncEntraClient(SECRET_CLIENT, emu.tenant_id, authority_host=emu.url, client_secret=SECRET) as with_secret,
            AsyncEntraClient(
                CERT_CLIENT, emu.tenant_id, authority_host=emu.url, client_certificate=certificate
            ) as with_cert,
        ):
            first, second = await asyncio.gather(with_secret.acquire_for_client(), with_cert.acquire_for_client())
            with pytest.raises(ConfigError):
                await with_secret.acquire_for_client(scopes="https://graph.microsoft.com/User.Read")
            return [first.access_token, second.access_token]

    secret_token, cert_token = asyncio.run(run())
    check_app_token(secret_token, SECRET_CLIENT, "1")
    check_app_token(cert_token, CERT_CLIENT, "2")


# -- the CLI ---------------------------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    out: str
    err: str


def cli(emu: Emulator, client_id: str, *extra: str, stdin: str = "", monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    out, err = io.StringIO(), io.StringIO()
    argv = ["client-credentials", "--tenant", emu.tenant_id, "--client-id", client_id, "--authority-host", emu.url]
    code = main([*argv, *extra], stdout=out, stderr=err)
    return Run(code, out.getvalue(), err.getvalue())


def test_cli_secret_from_stdin(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    result = cli(emu, SECRET_CLIENT, "--client-secret-stdin", "--json", stdin=SECRET + "\n", monkeypatch=monkeypatch)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert set(data) == TOKEN_JSON_KEYS
    assert data["refresh_token"] is None and data["scope"] == [DATABRICKS_SCOPE]
    assert data["claims"]["idtyp"] == "app" and data["claims"]["appidacr"] == "1"
    assert SECRET not in result.out + result.err


def test_cli_secret_from_env(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    result = cli(emu, SECRET_CLIENT, monkeypatch=monkeypatch)
    assert result.code == 0, result.err
    assert result.out.startswith("Access token:") and SECRET not in result.out + result.err


def test_cli_certificate(emu: Emulator, pem_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = cli(emu, CERT_CLIENT, "--certificate", str(pem_file), "--json", monkeypatch=monkeypatch)
    assert result.code == 0, result.err
    assert json.loads(result.out)["claims"]["appidacr"] == "2"
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PATH", str(pem_file))
    result = cli(emu, CERT_CLIENT, "--json", monkeypatch=monkeypatch)
    assert result.code == 0, result.err
    assert json.loads(result.out)["claims"]["appid"] == CERT_CLIENT


@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [
        (["--client-secret", "argv-secret-value"], {}, "never pass a client secret on the command line"),
        (["--client-secret=argv-secret-value"], {"AZURE_CLIENT_SECRET": SECRET}, "--client-secret-stdin"),
        ([], {}, "no client credential"),
        (["--client-secret-stdin", "--certificate", "x.pem"], {}, "not both"),
        (["--tenant", "organizations"], {"AZURE_CLIENT_SECRET": SECRET}, "tenant"),
        (["--scope", "https://graph.microsoft.com/User.Read"], {"AZURE_CLIENT_SECRET": SECRET}, "/.default"),
        (["--certificate", "/nonexistent/sp.pem"], {}, "cannot read the certificate file"),
    ],
)
def test_cli_usage_errors_exit_2_without_sending(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, extra: List[str], env: Dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = emu.count("token")
    result = cli(emu, SECRET_CLIENT, *extra, stdin=SECRET + "\n", monkeypatch=monkeypatch)
    assert result.code == 2
    assert message in result.err
    assert "argv-secret-value" not in result.err + result.out
    assert emu.count("token") == before


def test_cli_refused_secret_exits_1(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    result = cli(emu, SECRET_CLIENT, "--client-secret-stdin", "--json", stdin="wrong\n", monkeypatch=monkeypatch)
    assert result.code == 1
    assert json.loads(result.err.splitlines()[-1])["error_codes"] == [7000215]


def test_cli_subprocess_secret_on_stdin(emu: Emulator) -> None:
    argv = ["client-credentials", "--tenant", emu.tenant_id, "--client-id", SECRET_CLIENT, "--authority-host", emu.url]
    done = subprocess.run(
        [sys.executable, "-m", "oauth_core", *argv, "--client-secret-stdin", "--json", "--no-cache"],
        input=SECRET + "\n",
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["claims"]["appid"] == SECRET_CLIENT
    assert SECRET not in done.stdout + done.stderr


# -- get_token for a service principal, and certificate clients on the code flow ---------------


def test_get_token_for_an_app_uses_client_credentials_and_the_cache(emu: Emulator) -> None:
    now = [1_800_000_000.0]
    before = client_credentials_posts(emu)
    with EntraClient(
        SECRET_CLIENT, emu.tenant_id, authority_host=emu.url, client_secret=SECRET, clock=lambda: now[0]
    ) as client:
        first = client.get_token()  # nothing cached: the service principal acts as itself
        assert client.get_token().access_token == first.access_token  # served from the cache
        assert client_credentials_posts(emu) - before == 1
        now[0] = first.expires_at - 30  # inside the hard margin: renewed by asking again
        renewed = client.get_token()
    assert client_credentials_posts(emu) - before == 2
    assert renewed.access_token != first.access_token
    check_app_token(renewed.access_token, SECRET_CLIENT, "1")


def test_public_client_without_a_cache_entry_still_needs_a_person(emu: Emulator) -> None:
    from oauth_core.core.errors import InteractionRequired

    with EntraClient(emu.config.clients[0].client_id, emu.tenant_id, authority_host=emu.url) as client:
        with pytest.raises(InteractionRequired):
            client.get_token()


@respx.mock
def test_certificate_client_sends_an_assertion_when_redeeming_a_code(pem: Pem) -> None:
    tenant = "aaaaaaaa-0000-0000-0000-000000000001"
    certificate = ClientCertificate.from_pem(pem.key_pem, pem.cert_pem)
    route = respx.post(f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token").mock(
        return_value=httpx.Response(
            200, json={"token_type": "Bearer", "expires_in": 3600, "access_token": "opaque-token"}
        )
    )
    with EntraClient(CERT_CLIENT, tenant, client_certificate=certificate, offline_access=False) as client:
        pending = client.authorization_request()
        client.exchange_code(pending, code="0.AXkA-code")
    form = dict(parse_qsl(route.calls.last.request.content.decode()))
    assert form["client_assertion_type"] == CLIENT_ASSERTION_TYPE
    assert jwt.get_unverified_header(form["client_assertion"])["x5t#S256"]
    assert "client_secret" not in form
