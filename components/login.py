"""Logging in, the request gate and cross-site request checks, on the app's Flask server.

:func:`install` adds, under the Dash routes prefix:

* ``GET /healthz`` - ``200 ok`` in every mode, no data, no login (for load balancers and
  monitors).
* ``GET|POST /login``, ``POST /logout`` (``accounts`` mode) - a plain Flask form; Flask-Login
  keeps the account in Flask's signed session cookie. Five failed logins of one account name
  from one address within 15 minutes block that pair for the rest of the window (429).
* a gate before every request (``accounts`` mode): without a logged-in account, page GETs
  redirect to the login page and everything else - ``/_dash-layout``, ``/_dash-dependencies``,
  callbacks (``/_dash-update-component``), the JavaScript bundles, ``/assets``, downloads -
  answers ``401``. So an unauthenticated client gets nothing but the login form and
  ``/healthz``.
* a same-origin check on every non-GET request, in every mode (CSRF). Dash callbacks are
  JSON POSTs from the page's own origin, which cannot carry a per-form token without
  changing Dash's renderer; so, as OWASP recommends for such APIs, the ``Origin`` header
  (or, without it, ``Referer``) must name this server's host, and the session cookie is
  ``SameSite=Lax`` and ``HttpOnly`` (a cross-site form POST does not carry it at all). In
  ``accounts`` mode a POST with neither header is refused too (browsers always send
  ``Origin`` on POST; other clients must say where they come from). The login form also
  carries a per-session CSRF token (the Flask-WTF pattern), so nobody can log a browser
  into another account. Behind a proxy that rewrites ``Host``, name the public host in
  ``FM_TRUSTED_HOSTS`` (comma-separated ``host[:port]``).

Configuration: ``FM_SECRET_KEY`` signs the session cookies (default: a random key per
process, so logins end when the server restarts; set it when several processes serve the
app); ``FM_SECURE_COOKIES=1`` marks the cookie ``Secure`` (serve behind HTTPS then);
sessions last :data:`SESSION_HOURS` hours.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from markupsafe import escape

from components.access import ACCOUNTS, Access

__all__ = ["install", "SESSION_HOURS", "HEALTHZ"]

SESSION_HOURS = 12
HEALTHZ = "healthz"
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class User:
    """The Flask-Login user of an account. ``get_id`` carries a fingerprint of the password
    hash, so changing an account's password (``users add --replace``) ends its other
    sessions; the role is read from the users file on every request, so a new role applies
    at once and a removed account is logged out."""

    is_active = True
    is_authenticated = True
    is_anonymous = False

    def __init__(self, account):
        self.account = account

    @staticmethod
    def fingerprint(account) -> str:
        return hashlib.sha256(account.password_hash.encode()).hexdigest()[:16]

    def get_id(self) -> str:
        return f"{self.account.name}|{self.fingerprint(self.account)}"


class LoginThrottle:
    """Failed logins per (account name, client address): after :attr:`limit` failures within
    :attr:`window_s` seconds that pair is refused (429) until the window has passed, so a
    password cannot be guessed at request speed, and a guesser elsewhere cannot lock the
    account's owner out. In memory, per process."""

    def __init__(self, limit: int = 5, window_s: float = 900.0):
        import threading

        self.limit, self.window_s = limit, window_s
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key, now) -> list[float]:
        times = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def retry_after(self, key) -> int:
        """Seconds until ``key`` may try again (0: now)."""
        import time

        now = time.monotonic()
        with self._lock:
            times = self._recent(key, now)
            return int(self.window_s - (now - times[0])) + 1 if len(times) >= self.limit else 0

    def failed(self, key) -> None:
        import time

        now = time.monotonic()
        with self._lock:
            self._failures[key] = [*self._recent(key, now), now]

    def succeeded(self, key) -> None:
        with self._lock:
            self._failures.pop(key, None)


def _trusted_hosts() -> set[str]:
    return {h.strip().lower() for h in os.environ.get("FM_TRUSTED_HOSTS", "").split(",") if h.strip()}


def same_origin(request, strict: bool) -> bool:
    """Whether a state-changing request comes from a page of this server: its ``Origin``
    (else ``Referer``) names ``request.host`` (or a ``FM_TRUSTED_HOSTS`` entry). Neither header:
    refused when ``strict``, allowed otherwise (a non-browser client on the local machine)."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source:
        return not strict
    if source == "null":  # sandboxed frames, cross-origin redirects
        return False
    host = urlsplit(source).netloc.lower()
    return bool(host) and (host == request.host.lower() or host in _trusted_hosts())


def install(app, access: Access) -> None:
    """Add ``/healthz``, the same-origin check and, in ``accounts`` mode, Flask-Login, the
    login/logout routes and the gate to the Dash ``app``'s server (see the module docstring)."""
    from flask import Response, redirect, request, session

    server = app.server
    prefix = app.config.routes_pathname_prefix
    strict = access.mode == ACCOUNTS

    @server.route(f"{prefix}{HEALTHZ}", endpoint="fm_healthz", methods=["GET", "HEAD"])
    def healthz():
        return Response("ok\n", mimetype="text/plain", headers={"Cache-Control": "no-store"})

    @server.before_request
    def check_origin():
        if request.method not in _SAFE_METHODS and not same_origin(request, strict):
            return Response("cross-site request refused (Origin/Referer is not this server)\n", status=403,
                            mimetype="text/plain")
        return None

    if access.mode != ACCOUNTS:
        return

    from flask_login import LoginManager, current_user, login_user, logout_user

    server.secret_key = os.environ.get("FM_SECRET_KEY") or server.secret_key or secrets.token_hex(32)
    server.config.update(
        SESSION_COOKIE_NAME="fm_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=os.environ.get("FM_SECURE_COOKIES", "0") == "1",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )
    manager = LoginManager()
    manager.session_protection = "basic"
    manager.init_app(server)
    accounts = access.accounts

    @manager.user_loader
    def load_user(user_id: str):
        name, _, fp = str(user_id).partition("|")
        acc = accounts.get(name)
        if acc is None or not hmac.compare_digest(fp, User.fingerprint(acc)):
            return None
        return User(acc)

    throttle = server.extensions["fm_login_throttle"] = LoginThrottle()
    login_path, logout_path = f"{prefix}login", f"{prefix}logout"
    open_paths = {f"{prefix}{HEALTHZ}", login_path}

    def _page_request(path: str) -> bool:
        rest = path[len(prefix):] if path.startswith(prefix) else path
        return (request.method == "GET" and not rest.startswith(("_", "assets/", "download/"))
                and "text/html" in request.headers.get("Accept", "text/html"))

    @server.before_request
    def gate():
        if request.path in open_paths or current_user.is_authenticated:
            return None
        if _page_request(request.path):
            nxt = request.full_path.rstrip("?")
            return redirect(f"{login_path}?next={_quote(nxt)}")
        return Response("login required\n", status=401, mimetype="text/plain",
                        headers={"Cache-Control": "no-store"})

    def _csrf_token() -> str:
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(32)
        return session["csrf"]

    @server.route(login_path, endpoint="fm_login", methods=["GET", "POST"])
    def login():
        from pipeline.review.accounts import check_password

        nxt = _safe_next(request.values.get("next"), prefix)
        if request.method == "GET":
            if current_user.is_authenticated:
                return redirect(nxt)
            return _login_page(_csrf_token(), nxt, login_path)
        token = request.form.get("csrf", "")
        if not hmac.compare_digest(str(session.get("csrf", "")), token) or not token:
            return _login_page(_csrf_token(), nxt, login_path, "The form expired; try again.", 400)
        name = request.form.get("username", "")
        key = (name[:64], request.remote_addr or "")
        wait_s = throttle.retry_after(key)
        if wait_s:
            page = _login_page(_csrf_token(), nxt, login_path, f"Too many failed logins: try again in "
                               f"{(wait_s + 59) // 60} min.", 429)
            page.headers["Retry-After"] = str(wait_s)
            return page
        acc = accounts.get(name)
        if not check_password(acc, request.form.get("password", "")):
            throttle.failed(key)
            return _login_page(_csrf_token(), nxt, login_path, "Wrong account name or password.", 401)
        throttle.succeeded(key)
        session.clear()  # a fresh session (and CSRF token) for the account
        session.permanent = True
        login_user(User(acc))
        return redirect(nxt)

    @server.route(logout_path, endpoint="fm_logout", methods=["POST"])
    def logout():
        logout_user()
        session.clear()
        return redirect(login_path)


def _quote(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="/")


def _safe_next(nxt, prefix: str) -> str:
    """Where to go after logging in: a path on this server only (never ``//host`` or a URL)."""
    if not isinstance(nxt, str) or not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt:
        return prefix
    parts = urlsplit(nxt)
    if parts.scheme or parts.netloc:
        return prefix
    return nxt


def _login_page(token: str, nxt: str, action: str, error: str = "", status: int = 200):
    from flask import Response

    from components.layout import BRAND

    err = f'<p class="err" role="alert">{escape(error)}</p>' if error else ""
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · {escape(BRAND)}</title>
<link rel="icon" href="data:,">
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: #f4f5f7; margin: 0; }}
main {{ max-width: 22rem; margin: 12vh auto; background: #fff; border: 1px solid #dee2e6; border-radius: .5rem;
        padding: 1.5rem 1.75rem; }}
h1 {{ font-size: 1.15rem; margin: 0 0 1rem; }} label {{ display: block; font-size: .9rem; margin: .6rem 0 .2rem; }}
input[type=text], input[type=password] {{ width: 100%; box-sizing: border-box; padding: .4rem .5rem;
        border: 1px solid #ced4da; border-radius: .3rem; font-size: 1rem; }}
button {{ margin-top: 1rem; width: 100%; padding: .45rem; background: #212529; color: #fff; border: 0;
        border-radius: .3rem; font-size: 1rem; cursor: pointer; }}
.err {{ color: #c92a2a; font-size: .9rem; }} .note {{ color: #6c757d; font-size: .8rem; margin-top: 1rem; }}
</style></head>
<body><main>
<h1>◐ {escape(BRAND)}</h1>
{err}
<form method="post" action="{escape(action)}" id="fm-login">
<input type="hidden" name="csrf" value="{escape(token)}">
<input type="hidden" name="next" value="{escape(nxt)}">
<label for="username">Account</label><input type="text" id="username" name="username" autocomplete="username"
 autofocus required maxlength="64">
<label for="password">Password</label><input type="password" id="password" name="password"
 autocomplete="current-password" required>
<button type="submit" id="fm-login-submit">Log in</button>
</form>
<p class="note">Accounts are made by the dashboard's administrator
(<code>python -m pipeline users add</code>).</p>
</main></body></html>
"""
    return Response(html, status=status, mimetype="text/html", headers={"Cache-Control": "no-store"})
