"""The emulator's HTML: the sign-in page, the device-login pages, error pages and form_post.

Every value that came from a request is HTML-escaped (quotes included) before it is placed in a
page; templates use :class:`string.Template` so nothing is formatted twice.
"""

from __future__ import annotations

import html
from string import Template
from typing import Mapping, Optional

from .aadsts import Refusal
from .wire import Ctx, timestamp

__all__ = ["device_code_page", "device_done_page", "error_page", "form_post_page", "sign_in_page"]

_STYLE = (
    "body{font-family:Segoe UI,Helvetica,Arial,sans-serif;background:#f2f2f2;margin:0}"
    "main{max-width:440px;margin:48px auto;background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}"
    "label{display:block;margin-top:16px}input{width:100%;padding:6px;margin-top:4px;box-sizing:border-box}"
    "button{margin-top:20px;margin-right:8px;padding:6px 20px}.error{color:#e81123}.note{color:#666;font-size:12px}"
)

_LAYOUT = Template(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title><style>$style</style></head>
<body><main>
$content
<p class="note">oauth-core emulator: a local test service, not Microsoft Entra ID.</p>
</main></body></html>
"""
)

_SIGN_IN = Template(
    """<h1>Sign in</h1>
<p>to continue to <strong>$app</strong></p>
$error
<form method="post" action="$action" autocomplete="off">
<input type="hidden" name="flowtoken" value="$flow">
<label for="username">Email, phone, or Skype</label>
<input id="username" name="username" type="text" value="$username" autofocus required>
<label for="password">Password</label>
<input id="password" name="password" type="password">
<button id="signin" name="action" value="signin" type="submit">Sign in</button>
<button id="cancel" name="action" value="cancel" type="submit" formnovalidate>Cancel</button>
</form>"""
)

_DEVICE_CODE = Template(
    """<h1>Enter code</h1>
<p>Enter the code displayed on your app or device.</p>
$error
<form method="post" action="/devicelogin" autocomplete="off">
<label for="otc">Code</label>
<input id="otc" name="otc" type="text" value="$code" autofocus required>
<button id="next" name="action" value="code" type="submit">Next</button>
</form>"""
)

_ERROR = Template(
    """<h1>Sorry, but we're having trouble signing you in.</h1>
<p class="error" id="error">AADSTS$code: $message</p>
<p>Request Id: $trace<br>Correlation Id: $correlation<br>Timestamp: $timestamp</p>"""
)

_FORM_POST = Template(
    """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Working...</title></head>
<body onload="document.forms[0].submit()">
<form method="POST" name="hiddenform" action="$action">
$fields<noscript><p>Script is disabled. Click Submit to continue.</p><input type="submit" value="Submit"></noscript>
</form></body></html>
"""
)


def _e(value: Optional[str]) -> str:
    return html.escape(value or "", quote=True)


def _layout(title: str, content: str) -> str:
    return _LAYOUT.substitute(title=_e(title), style=_STYLE, content=content)


def _error_line(message: Optional[str]) -> str:
    return f'<p class="error" id="error" role="alert">{_e(message)}</p>' if message else ""


def sign_in_page(*, action: str, flow_id: str, app_name: str, username: str = "", error: Optional[str] = None) -> str:
    """The sign-in form: ``#username``, ``#password``, ``#signin``, ``#cancel``, hidden flow id."""
    content = _SIGN_IN.substitute(
        app=_e(app_name),
        error=_error_line(error),
        action=_e(action),
        flow=_e(flow_id),
        username=_e(username),
    )
    return _layout("Sign in to your account", content)


def device_code_page(*, code: str = "", error: Optional[str] = None) -> str:
    """The first device-login page: enter the user code (``#otc``, ``#next``)."""
    return _layout("Enter code", _DEVICE_CODE.substitute(code=_e(code), error=_error_line(error)))


def device_done_page(*, app_name: str, approved: bool) -> str:
    """The last device-login page."""
    if approved:
        text = f"You have signed in to the <strong>{_e(app_name)}</strong> application on your device."
        text += " You may now close this window."
    else:
        text = "You have declined to sign in to the application on your device. You may now close this window."
    return _layout("Device sign-in", f'<h1>Device sign-in</h1>\n<p id="result">{text}</p>')


def error_page(refused: Refusal, ctx: Ctx) -> str:
    """Entra's "having trouble signing you in" page for requests that must not be redirected."""
    content = _ERROR.substitute(
        code=refused.code,
        message=_e(refused.message),
        trace=_e(ctx.trace_id),
        correlation=_e(ctx.correlation_id),
        timestamp=_e(timestamp(ctx.now)),
    )
    return _layout("Sign in to your account", content)


def form_post_page(action: str, fields: Mapping[str, str]) -> str:
    """``response_mode=form_post``: a self-submitting form carrying the response fields."""
    inputs = "".join(f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">\n' for k, v in fields.items())
    return _FORM_POST.substitute(action=_e(action), fields=inputs)
