"""Dashboard accounts: the users file of ``app.py --users FILE`` and ``python -m pipeline users``.

Users file (JSON, written atomically, mode 0600)::

    {"version": 1, "users": {"alice": {"role": "reviewer", "password_hash": "scrypt:...",
                                        "created_at": "...Z"}}}

* ``password_hash`` is Werkzeug's :func:`werkzeug.security.generate_password_hash`
  (``scrypt`` with a random 16-character salt, the method and salt stored in the string);
  the password itself is never stored. No crypto of our own: hashing and checking are
  Werkzeug's.
* ``role`` is one of :data:`ROLES`, each including the rights of the one before:
  ``viewer`` browses and downloads, ``reviewer`` also reviews picks and re-inverts,
  ``admin`` also sees the audit trail and can undo a change (see :mod:`components.access`).
* Account names: 1-64 characters of ``A-Z a-z 0-9 _ . @ -``; they become the ``reviewer``
  of every review the account writes.

The server re-reads the file when it changes (:class:`AccountsFile`), so an account added,
removed or given another role takes effect on the next request without a restart.
"""
from __future__ import annotations

import getpass
import json
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

__all__ = ["ROLES", "MIN_PASSWORD", "Account", "AccountsFile", "AccountError", "add_account",
           "remove_account", "read_accounts", "check_password", "add_cli"]

ROLES = ("viewer", "reviewer", "admin")
MIN_PASSWORD = 8
FILE_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")

#: a hash checked when the account does not exist, so that a wrong name costs as much time
#: as a wrong password (the response time does not tell which names exist)
_DUMMY_HASH = None


class AccountError(InputError):
    """A bad account request (name, role, password, file); nothing was written. An
    :class:`~pipeline.errors.InputError`, so the command line reports it on one line, exit 2."""

    def __init__(self, reason: str):
        ValueError.__init__(self, reason)
        self.file, self.reason, self.line = "", reason, None


@dataclass(frozen=True)
class Account:
    """One account: ``name``, ``role`` (one of :data:`ROLES`) and Werkzeug ``password_hash``."""
    name: str
    role: str
    password_hash: str


def validate_name(name) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise AccountError(f"bad account name {str(name)[:70]!r}: 1-64 characters of letters, digits, _ . @ -")
    return name


def validate_role(role) -> str:
    if role not in ROLES:
        raise AccountError(f"bad role {str(role)[:20]!r}: one of {', '.join(ROLES)}")
    return role


def read_accounts(path: str | os.PathLike) -> dict[str, Account]:
    """The accounts of a users file, by name; ``{}`` when the file does not exist.
    Raises :class:`AccountError` when the file is not a users file."""
    p = Path(path)
    if not p.exists():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        users = data["users"]
        out = {}
        for name, u in users.items():
            out[validate_name(name)] = Account(name, validate_role(u["role"]), str(u["password_hash"]))
        return out
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AccountError(f"{p} is not a users file ({type(exc).__name__}: {exc}) "
                           f"(create it with `python -m pipeline users add NAME --role ROLE --file {p}`)") from None


def _write(path: Path, accounts: dict[str, Account], extra: dict[str, dict]) -> None:
    """Write the file atomically (temporary file + rename), readable by its owner only."""
    users = {}
    for name in sorted(accounts):
        a = accounts[name]
        users[name] = {**extra.get(name, {}), "role": a.role, "password_hash": a.password_hash}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": FILE_VERSION, "users": users}, f, indent=1)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _extra(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    users = json.loads(path.read_text(encoding="utf-8")).get("users", {})
    return {n: {k: v for k, v in u.items() if k not in ("role", "password_hash")} for n, u in users.items()}


def add_account(path: str | os.PathLike, name: str, role: str, password: str, *, replace: bool = False) -> Account:
    """Add (or with ``replace``, update) an account with a salted hash of ``password``."""
    from datetime import datetime, timezone

    from werkzeug.security import generate_password_hash

    p = Path(path)
    name, role = validate_name(name), validate_role(role)
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise AccountError(f"password shorter than {MIN_PASSWORD} characters (nothing written)")
    accounts = read_accounts(p)
    if name in accounts and not replace:
        raise AccountError(f"account {name!r} exists in {p} (--replace to set a new password/role)")
    extra = _extra(p)
    extra.setdefault(name, {})["created_at" if name not in accounts else "updated_at"] = (
        datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    accounts[name] = Account(name, role, generate_password_hash(password))
    _write(p, accounts, extra)
    return accounts[name]


def remove_account(path: str | os.PathLike, name: str) -> None:
    p = Path(path)
    accounts = read_accounts(p)
    if name not in accounts:
        raise AccountError(f"no account {str(name)[:70]!r} in {p}")
    del accounts[name]
    _write(p, accounts, _extra(p))


def check_password(account: Account | None, password) -> bool:
    """Whether ``password`` is the account's (Werkzeug's constant-time check); a missing
    account is checked against a dummy hash so both failures take the same time."""
    global _DUMMY_HASH
    from werkzeug.security import check_password_hash, generate_password_hash

    if not isinstance(password, str):
        password = ""
    if account is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = generate_password_hash("not a password of anybody")
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(account.password_hash, password)


class AccountsFile:
    """The accounts of a users file for the server: re-read when the file changes
    (mtime/size/inode), thread-safe. A file that becomes unreadable keeps nobody logged in."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._version = None
        self._accounts: dict[str, Account] = {}
        self.accounts()  # fail at start on a bad file

    def _stat(self):
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def accounts(self) -> dict[str, Account]:
        version = self._stat()
        with self._lock:
            if version != self._version:
                self._accounts = read_accounts(self.path) if version is not None else {}
                self._version = version
            return self._accounts

    def get(self, name) -> Account | None:
        return self.accounts().get(name) if isinstance(name, str) else None


# -- command line: python -m pipeline users ... -----------------------------------------------
def _read_password_twice(stdin=None) -> str:
    """The new password, entered twice: with getpass on a terminal, else two lines of stdin
    (``printf 'pw\\npw\\n' | python -m pipeline users add ...``)."""
    stdin = stdin or sys.stdin
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        second = getpass.getpass("Repeat password: ")
    else:
        first, second = stdin.readline(), stdin.readline()
        if not second:
            raise AccountError("give the password twice on stdin (two lines; nothing written)")
        first, second = first.rstrip("\r\n"), second.rstrip("\r\n")
    if first != second:
        raise AccountError("the two passwords differ (nothing written; enter the same password twice)")
    return first


def _cmd_add(args) -> int:
    password = _read_password_twice()
    acc = add_account(args.file, args.name, args.role, password, replace=args.replace)
    print(f"{'updated' if args.replace else 'added'} {acc.name} ({acc.role}) in {args.file}")
    return 0


def _cmd_remove(args) -> int:
    remove_account(args.file, args.name)
    print(f"removed {args.name} from {args.file}")
    return 0


def _cmd_list(args) -> int:
    for a in read_accounts(args.file).values():
        print(f"{a.name}\t{a.role}")
    return 0


def add_cli(sub) -> None:
    """``python -m pipeline users add|remove|list``."""
    u = sub.add_parser("users", help="dashboard accounts (app.py --users FILE): add, remove, list")
    us = u.add_subparsers(dest="users_command", required=True)
    a = us.add_parser("add", help="add an account; the password is read from stdin, twice")
    a.add_argument("name", help="account name (it signs the reviews)")
    a.add_argument("--role", required=True, choices=ROLES,
                   help="viewer: browse and download; reviewer: also review and re-invert; admin: also audit and undo")
    a.add_argument("--file", required=True, help="users file (created if missing)")
    a.add_argument("--replace", action="store_true", help="set a new password and role for an existing account")
    a.set_defaults(func=_cmd_add)
    r = us.add_parser("remove", help="remove an account")
    r.add_argument("name")
    r.add_argument("--file", required=True)
    r.set_defaults(func=_cmd_remove)
    ls = us.add_parser("list", help="list the accounts and their roles")
    ls.add_argument("--file", required=True)
    ls.set_defaults(func=_cmd_list)
