"""Who may do what on this server: the access mode, the roles' rights, and the check every
write makes on the server (never on what the browser says about itself).

Modes (chosen by ``app.py``, see :func:`mode_for`):

``local``      no users file, bound to a loopback address: today's single-user mode; every
               right, the reviewer name is what the page's "Reviewer" field says.
``accounts``   ``--users FILE``: nothing but ``GET /healthz`` without logging in
               (:mod:`components.login`); rights from the account's role, reviews signed with
               the account's name.
``read-only``  no users file but bound to a non-loopback address (the secure default): anyone
               who can reach the port may browse and download, nobody can write - no review,
               no re-inversion, no undo, and the review database is opened read-only.

Rights (:data:`RIGHTS`): ``view`` (browse, download), ``review`` (set/clear picks),
``reinvert``, ``audit`` (see the audit trail), ``undo``. Roles: ``viewer`` = view;
``reviewer`` = view, review, reinvert; ``admin`` = all.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["LOCAL", "ACCOUNTS", "READ_ONLY", "RIGHTS", "Access", "AccessDenied", "mode_for", "is_loopback",
           "set_access", "get_access", "current_account", "current_role", "can", "require"]

LOCAL, ACCOUNTS, READ_ONLY = "local", "accounts", "read-only"

RIGHTS = {
    "viewer": frozenset({"view"}),
    "reviewer": frozenset({"view", "review", "reinvert"}),
    "admin": frozenset({"view", "review", "reinvert", "audit", "undo"}),
}
_ALL = RIGHTS["admin"]
_WHAT = {"review": "review picks", "reinvert": "re-invert", "audit": "see the audit trail", "undo": "undo changes",
         "view": "browse"}


class AccessDenied(PermissionError):
    """The current client may not do this; nothing was written. The message says why."""


@dataclass
class Access:
    """The server's access mode; ``accounts`` (a :class:`pipeline.review.accounts.AccountsFile`)
    in ``accounts`` mode; ``reason`` says why the server is read-only."""
    mode: str = LOCAL
    accounts: object | None = None
    reason: str = ""

    @property
    def writable(self) -> bool:
        """Whether this server has a write path at all (False in read-only mode)."""
        return self.mode != READ_ONLY


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` serves this machine only: ``localhost`` or a loopback IP
    (127.0.0.0/8, ::1). Anything else - ``0.0.0.0``, ``::``, a LAN address, another host
    name - counts as shared."""
    host = (host or "").strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def mode_for(host: str | None, users_file) -> str:
    """``accounts`` with a users file; else ``local`` on a loopback address and
    ``read-only`` on any other (``host`` None = not known, e.g. under a WSGI server: read-only)."""
    if users_file:
        return ACCOUNTS
    return LOCAL if host is not None and is_loopback(host) else READ_ONLY


def set_access(server, access: Access) -> Access:
    server.extensions["fm_access"] = access
    return access


def get_access() -> Access:
    """The access of the app serving the current request (``local`` outside a request or
    when none was set, as before accounts existed)."""
    from flask import current_app, has_app_context

    if has_app_context():
        a = current_app.extensions.get("fm_access")
        if a is not None:
            return a
    return Access(LOCAL)


def current_account():
    """The logged-in :class:`~pipeline.review.accounts.Account` in ``accounts`` mode, else None."""
    from flask import has_request_context

    if get_access().mode != ACCOUNTS or not has_request_context():
        return None
    from flask_login import current_user

    return getattr(current_user, "account", None) if current_user.is_authenticated else None


def current_role() -> str | None:
    """The role of the client: the account's role (None when not logged in) in ``accounts``
    mode, ``admin`` in ``local`` mode (the single local user owns everything), ``viewer``
    in ``read-only`` mode."""
    a = get_access()
    if a.mode == LOCAL:
        return "admin"
    if a.mode == READ_ONLY:
        return "viewer"
    acc = current_account()
    return acc.role if acc is not None else None


def can(right: str) -> bool:
    role = current_role()
    return role is not None and right in RIGHTS.get(role, ())


def require(right: str, reviewer: str | None = None) -> str | None:
    """Check ``right`` for the current request; return the reviewer name to record: the
    account's name in ``accounts`` mode (whatever the browser sent), ``reviewer`` as given
    in ``local`` mode. Raises :class:`AccessDenied` otherwise."""
    if right not in _ALL:
        raise ValueError(f"unknown right {right!r}")
    a = get_access()
    if a.mode == READ_ONLY and right != "view":
        raise AccessDenied(f"this server is read-only ({a.reason or 'no users file'}): cannot {_WHAT[right]}")
    if a.mode == LOCAL:
        return reviewer
    acc = current_account()
    if acc is None:
        raise AccessDenied("not logged in")
    if right not in RIGHTS.get(acc.role, ()):
        raise AccessDenied(f"{acc.name} is a {acc.role}: cannot {_WHAT[right]}")
    return acc.name
