"""``oauth-core demo``: the whole story against the embedded emulator, offline, in a few seconds.

Also home of :func:`scripted_sign_in`, a tiny stand-in for a person at a browser: it loads the
sign-in page, fills the form and returns the redirect the browser would follow.
"""

from __future__ import annotations

import time
from html.parser import HTMLParser
from typing import Dict, List, Optional, TextIO, Tuple
from urllib.parse import urljoin

import httpx

from ..core.claims import inspect_token
from ..core.errors import InteractionRequired, InvalidGrant, OAuthCoreError
from ..drivers.retry import RetryPolicy
from ..drivers.sync import EntraClient
from .exit_codes import exit_code_for
from .hints import shell_hint

__all__ = ["run_demo", "scripted_sign_in"]


class _FormParser(HTMLParser):
    """Collect the first form's action, method and input values."""

    def __init__(self) -> None:
        super().__init__()
        self.action: Optional[str] = None
        self.method = "get"
        self.fields: Dict[str, str] = {}
        self._in_form = False
        self._seen_form = False

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._seen_form:
            self._in_form = self._seen_form = True
            self.action = values.get("action", "")
            self.method = values.get("method", "get").lower()
        elif tag == "input" and self._in_form and values.get("name"):
            if values.get("type", "text") not in ("submit", "button", "checkbox", "radio"):
                self.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def scripted_sign_in(url: str, username: str, password: str, *, verify: bool | str = True) -> str:
    """Play the person at the browser: open ``url``, sign in, return the redirect ``Location``.

    Raises:
        OAuthCoreError: the page had no form, or the sign-in did not redirect (wrong password).
    """
    with httpx.Client(verify=verify, follow_redirects=False, timeout=10.0, trust_env=False) as browser:
        page = browser.get(url)
        form = _FormParser()
        form.feed(page.text)
        if form.action is None:
            raise OAuthCoreError(f"the sign-in page (HTTP {page.status_code}) has no form")
        fields = dict(form.fields)
        user_field = next((n for n in fields if "user" in n.lower() or n.lower() in ("login", "email")), "username")
        pass_field = next((n for n in fields if "pass" in n.lower()), "password")
        fields[user_field] = username
        fields[pass_field] = password
        answer = browser.post(urljoin(str(page.url), form.action), data=fields)
        location: Optional[str] = answer.headers.get("location")
        if answer.status_code not in (301, 302, 303, 307) or not location:
            raise OAuthCoreError(f"the sign-in did not redirect (HTTP {answer.status_code})")
        return location


def _short(token: Optional[str], keep: int = 16) -> str:
    if not token:
        return "(none)"
    return f"{token[:keep]}... ({len(token)} chars)"


class _Story:
    """The demo's narration and the waits its retry policy slept."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.waits: List[float] = []

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


def _code_flow(client: EntraClient, story: _Story, user: str, password: str) -> None:
    story.say("1. Authorization code flow with PKCE")
    pending = client.authorization_request(redirect_uri="http://localhost")
    story.say(f"   authorize URL: {pending.url[:110]}...")
    location = scripted_sign_in(pending.url, user, password)
    story.say(f"   {user} signs in; the browser lands on {location[:60]}...")
    tokens = client.exchange_code(pending, location)
    story.say(
        f"   state checked, code redeemed with the PKCE verifier, nonce checked: "
        f"access token {_short(tokens.access_token)}, refresh token: {'yes' if tokens.refresh_token else 'no'}"
    )


def _password_and_rotation(client: EntraClient, story: _Story, user: str, password: str) -> Optional[str]:
    """Steps 2 and 3; returns the newest refresh token, or None when the rotated-away one was refused."""
    story.say("\n2. Password grant (ROPC)")
    tokens = client.acquire_by_password(user, password)
    info = inspect_token(tokens.access_token)
    claims = info.claims
    story.say(f"   aud={claims.get('aud')} upn={claims.get('upn')} scp={claims.get('scp')} ver={claims.get('ver')}")
    story.say(f"   expires {info.expires_at:%H:%M:%S} UTC, in {int(info.seconds_left or 0) // 60} minutes")

    story.say("\n3. Refresh with rotation")
    old_refresh = tokens.refresh_token or ""
    tokens = client.refresh(old_refresh)
    story.say(f"   new access token, rotated refresh token: {tokens.refresh_token != old_refresh}")
    story.say("   Entra does not revoke the rotated-away refresh token: it keeps working until it expires,")
    story.say("   and a client keeps the newest one it was given")
    try:
        again = client.refresh(old_refresh)
    except InvalidGrant as exc:
        story.say(
            f"   UNEXPECTED: the old refresh token was refused: AADSTS{exc.error_codes[0] if exc.error_codes else '?'}"
        )
        return None
    story.say(f"   the old refresh token redeemed once more: access token {_short(again.access_token)}")
    return tokens.refresh_token or ""


def _mfa_refusal(client: EntraClient, story: _Story, username: str, password: str) -> bool:
    """Step 5: the password grant of a user who needs MFA is refused, with the shell's hint."""
    story.say(f"\n5. A user who needs MFA tries the password grant ({username})")
    try:
        client.acquire_by_password(username, password)
        story.say("   UNEXPECTED: the password grant succeeded")
        return False
    except InteractionRequired as exc:
        story.say(f"   refused: {exc.error} AADSTS{exc.error_codes[0] if exc.error_codes else '?'}")
        story.say(f"   hint: {shell_hint(exc)}")
    return True


def run_demo(out: TextIO) -> int:
    """Run the demo and write its story to ``out``; returns 0 when every step behaved as shown."""
    from ..emulator import Emulator, EmulatorConfig, Fault

    config = EmulatorConfig.default()
    user, password = config.users[0].username, config.users[0].password
    mfa_user = next(u for u in config.users if u.requires_mfa)
    story = _Story(out)
    with Emulator(config, port=0) as emulator:
        policy = RetryPolicy(sleep=story.sleep, max_retry_after=5.0)
        client_id = config.clients[0].client_id
        with EntraClient(client_id, emulator.tenant_id, authority_host=emulator.url, retry=policy) as client:
            story.say(f"Entra ID emulator on {emulator.url}, tenant {emulator.tenant_id}")
            story.say(f"Public client {client_id}, scope {client.scopes[0]} (Azure Databricks)\n")
            _code_flow(client, story, user, password)
            refresh_token = _password_and_rotation(client, story, user, password)
            if refresh_token is None:
                return 1

            story.say("\n4. Throttling: the next two token requests get 429 with Retry-After: 1")
            emulator.inject("token", Fault("status", status=429, retry_after=1), times=2)
            started = time.monotonic()
            client.refresh(refresh_token)
            story.say(
                f"   retried after waiting {', '.join(f'{w:g}s' for w in story.waits)}; "
                f"succeeded in {time.monotonic() - started:.1f}s"
            )
            if not _mfa_refusal(client, story, mfa_user.username, mfa_user.password):
                return 1
        from .demo_places import run_place_chapters

        if not run_place_chapters(emulator, story.say):
            return 1
    story.say("\nDone: every step ran over real HTTP against the local emulator.")
    return 0


def main(out: TextIO) -> int:
    """``oauth-core demo``: run the demo; a failure is reported in one line, with its exit code."""
    try:
        return run_demo(out)
    except OAuthCoreError as exc:
        out.write(f"demo failed: {exc}\n")
        return exit_code_for(exc)
