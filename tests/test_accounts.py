"""``python -m pipeline users add|remove|list`` and the users file (pipeline/review/accounts.py):
the password read twice from stdin, salted Werkzeug hashes, never the password itself."""
from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.review.accounts import AccountError, AccountsFile, add_account, check_password, read_accounts

ROOT = Path(__file__).resolve().parents[1]


def users(*args, stdin: str = ""):
    return subprocess.run([sys.executable, "-m", "pipeline", "users", *map(str, args)], input=stdin, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_users_add_reads_the_password_twice_and_stores_a_salted_hash(tmp_path):
    f = tmp_path / "users.json"
    r = users("add", "alice", "--role", "reviewer", "--file", f, stdin="correct horse\ncorrect horse\n")
    assert r.returncode == 0, r.stderr
    assert "added alice (reviewer)" in r.stdout
    r = users("add", "bob", "--role", "admin", "--file", f, stdin="correct horse\ncorrect horse\n")
    assert r.returncode == 0, r.stderr
    text = f.read_text()
    assert "correct horse" not in text
    data = json.loads(text)["users"]
    assert data["alice"]["role"] == "reviewer" and data["bob"]["role"] == "admin"
    ha, hb = data["alice"]["password_hash"], data["bob"]["password_hash"]
    assert ha.startswith("scrypt:") and ha != hb  # same password, different salts
    acc = read_accounts(f)
    assert check_password(acc["alice"], "correct horse") and not check_password(acc["alice"], "correct horsE")
    assert not check_password(None, "correct horse")
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert users("list", "--file", f).stdout.split("\n")[:2] == ["alice\treviewer", "bob\tadmin"]


def test_users_add_refuses_a_mismatch_a_short_password_a_bad_role_and_a_duplicate(tmp_path):
    f = tmp_path / "users.json"
    r = users("add", "alice", "--role", "viewer", "--file", f, stdin="first-password\nsecond-password\n")
    assert r.returncode == 2 and "differ" in r.stderr and not f.exists()
    r = users("add", "alice", "--role", "viewer", "--file", f, stdin="only-once\n")
    assert r.returncode == 2 and "twice" in r.stderr and not f.exists()
    r = users("add", "alice", "--role", "viewer", "--file", f, stdin="short\nshort\n")
    assert r.returncode == 2 and "shorter than" in r.stderr and not f.exists()
    r = users("add", "alice", "--role", "superuser", "--file", f, stdin="long-enough\nlong-enough\n")
    assert r.returncode == 2 and not f.exists()
    r = users("add", "bad name!", "--role", "viewer", "--file", f, stdin="long-enough\nlong-enough\n")
    assert r.returncode == 2 and "bad account name" in r.stderr and not f.exists()
    assert users("add", "alice", "--role", "viewer", "--file", f, stdin="long-enough\nlong-enough\n").returncode == 0
    before = f.read_text()
    r = users("add", "alice", "--role", "admin", "--file", f, stdin="other-password\nother-password\n")
    assert r.returncode == 2 and "--replace" in r.stderr and f.read_text() == before
    r = users("add", "alice", "--role", "admin", "--file", f, "--replace", stdin="other-password\nother-password\n")
    assert r.returncode == 0 and read_accounts(f)["alice"].role == "admin"
    assert check_password(read_accounts(f)["alice"], "other-password")
    assert users("remove", "alice", "--file", f).returncode == 0 and read_accounts(f) == {}


def test_accounts_file_follows_changes_and_refuses_a_file_that_is_not_a_users_file(tmp_path):
    f = tmp_path / "users.json"
    live = AccountsFile(f)
    assert live.get("alice") is None
    add_account(f, "alice", "viewer", "password-1")
    assert live.get("alice").role == "viewer"
    add_account(f, "alice", "admin", "password-1", replace=True)
    assert live.get("alice").role == "admin"
    bad = tmp_path / "bad.json"
    bad.write_text('{"users": {"x": {"role": "god", "password_hash": "h"}}}')
    with pytest.raises(AccountError, match="not a users file"):
        AccountsFile(bad)


def test_app_refuses_to_start_without_its_users_file(tmp_path):
    r = subprocess.run([sys.executable, "app.py", "--data-dir", str(tmp_path), "--users", str(tmp_path / "none.json")],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "users file" in r.stderr and "not found" in r.stderr
