"""Operator identities: bearer tokens from the file ``RUNBOOK_TOKENS_FILE`` names.

The file keeps only the SHA-256 of each token, never the token::

    tokens:
      - name: alice                 # the identity recorded on runs, approvals, cancels
        sha256: 9f86d08...          # hex SHA-256 of the token (runbook token new prints both)
        role: operator              # viewer | operator | admin
        teams: [storage]            # the owners.yaml teams alice acts for

A viewer reads; an operator also runs, approves and cancels the runbooks of their teams; an
admin may do all of it for every runbook, and reload the catalog. Tokens are compared in
constant time against every entry, so the answer takes as long for a near miss as a far one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml

from runner.alerts.signing import Headers
from runner.config import state_dir
from runner.errors import AuthError, RunbookError, UsageError, YamlError
from runner.yamlsource import Document, read

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


class Role(StrEnum):
    """What an identity may do, weakest first."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


@dataclass(frozen=True)
class Identity:
    """Who made a request."""

    name: str
    role: Role
    teams: frozenset[str] = frozenset()

    def acts_for(self, team: str) -> bool:
        """True when this identity may act on runbooks owned by *team*."""
        return self.role is Role.ADMIN or (self.role is Role.OPERATOR and team in self.teams)


LOCAL_ADMIN = Identity("local", Role.ADMIN)  # --insecure-local without a tokens file


def hash_token(token: str) -> str:
    """The hex SHA-256 the tokens file keeps for *token*."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits)."""
    return "rbk_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Tokens:
    """The identities of a tokens file."""

    entries: tuple[tuple[bytes, Identity], ...]

    @classmethod
    def load(cls, file: Path) -> Tokens:
        """Read *file*; YamlError names the file and line of the first problem."""
        return cls.of(read(file))

    @classmethod
    def of(cls, doc: Document) -> Tokens:
        """The identities of a tokens file already read; YamlError at the first problem."""
        file = doc.file

        def bad(path: tuple[str | int, ...], message: str) -> YamlError:
            return YamlError(file, doc.line(path), message)

        data = doc.data
        if isinstance(data, str) and data.startswith("rbk_"):  # never repeat it: it is a secret
            raise bad((), "this file holds a token itself, not its hash: let `runbook token new` write the "
                          "tokens file (it keeps only hashes), and give the token to its holder")
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            raise bad((), "expected a mapping with a list under 'tokens'")
        entries, names = [], set()
        for i, entry in enumerate(data["tokens"]):
            where: tuple[str | int, ...] = ("tokens", i)
            if not isinstance(entry, dict):
                raise bad(where, "each token is a mapping with name, sha256, role and teams")
            unknown = sorted(set(entry) - {"name", "sha256", "role", "teams"})
            if unknown:
                raise bad((*where, unknown[0]), f"unknown key {unknown[0]!r} (name, sha256, role, teams)")
            name, digest, role = entry.get("name"), entry.get("sha256"), entry.get("role")
            teams = entry.get("teams", [])
            if not isinstance(name, str) or not _NAME.match(name):
                raise bad((*where, "name"), "name: letters, digits and ._@- (at most 128)")
            if name in names:
                raise bad((*where, "name"), f"name {name!r} appears twice")
            if not isinstance(digest, str) or not _HEX64.match(digest):
                raise bad((*where, "sha256"), "sha256: the token's hex SHA-256 (64 lowercase hex digits), "
                          "never the token itself")
            if role not in {r.value for r in Role}:
                raise bad((*where, "role"), f"role: one of {', '.join(r.value for r in Role)}")
            if not isinstance(teams, list) or not all(isinstance(t, str) for t in teams):
                raise bad((*where, "teams"), "teams: a list of team names")
            names.add(name)
            entries.append((bytes.fromhex(digest), Identity(name, Role(role), frozenset(teams))))
        return cls(tuple(entries))

    def identify(self, headers: Headers) -> Identity:
        """The identity of the request's bearer token, or AuthError."""
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthError("missing credentials: send Authorization: Bearer <token>")
        return self.verify(token)

    def verify(self, token: str) -> Identity:
        """The identity of *token* (as the dashboard's login form sends it), or AuthError."""
        digest = hashlib.sha256(token.strip().encode()).digest()
        found = None
        for known, identity in self.entries:  # no early exit: every request compares with all
            if hmac.compare_digest(digest, known):
                found = identity
        if found is None:
            raise AuthError("invalid bearer token")
        return found

    def named(self, name: str) -> tuple[bytes, Identity] | None:
        """The token digest and identity called *name* (a session re-reads its rights with it)."""
        return next(((digest, who) for digest, who in self.entries if who.name == name), None)


def tokens_file(explicit: Path | None = None) -> Path:
    """The tokens file: *explicit* (--tokens-file), else $RUNBOOK_TOKENS_FILE, else tokens.yaml in the
    state directory, beside the default store (``runbook token new`` writes there)."""
    if explicit is not None:
        return explicit
    named = os.environ.get("RUNBOOK_TOKENS_FILE")
    return Path(named) if named else state_dir() / "tokens.yaml"


_HEADER = ("# Operator tokens of runbook-runner: the SHA-256 of each token, never the token itself.\n"
           "# Written by `runbook token new` and `runbook token revoke`; `runbook serve` reads it.\n")


@contextlib.contextmanager
def _locked(file: Path) -> Iterator[list[dict[str, object]]]:
    """The entries of *file* (none if it does not exist yet), rewritten atomically on exit.

    One writer at a time (a lock on the directory); a file that does not read as a tokens file is
    left alone and named in the error.
    """
    directory = file.parent
    if not directory.is_dir():
        raise UsageError(f"the directory of the tokens file {file} does not exist")
    lock = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries: list[dict[str, object]] = []
        mode = 0o600
        if file.exists():
            doc = read(file)
            Tokens.of(doc)  # refuse to rewrite a file we cannot read
            entries = list(doc.data["tokens"])
            mode = file.stat().st_mode & 0o777
        yield entries
        text = _HEADER + yaml.safe_dump({"tokens": entries}, sort_keys=False, default_flow_style=None)
        fd, temp = tempfile.mkstemp(prefix=f".{file.name}.", dir=directory)
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, file)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    finally:
        os.close(lock)


def add_token(file: Path, name: str, role: Role, teams: tuple[str, ...], *, replace: bool = False) -> str:
    """Give *name* a new token in *file* (created, mode 0600, when absent); return the token.

    A name that has a token already is refused unless *replace*: then its old token stops working.
    """
    if not _NAME.match(name):
        raise UsageError(f"token name {name!r}: letters, digits and ._@- (at most 128)")
    token = new_token()
    with _locked(file) as entries:
        known = [i for i, e in enumerate(entries) if e.get("name") == name]
        if known and not replace:
            raise UsageError(f"{name} has a token in {file} already; --replace gives {name} a new one "
                             "(the old one stops working)")
        entry: dict[str, object] = {"name": name, "sha256": hash_token(token), "role": role.value,
                                    "teams": list(teams)}
        if known:
            entries[known[0]] = entry
        else:
            entries.append(entry)
    return token


def revoke_token(file: Path, name: str) -> None:
    """Remove *name*'s token from *file*; UsageError if it has none."""
    if not file.exists():
        raise UsageError(f"no tokens file at {file}")
    with _locked(file) as entries:
        kept = [e for e in entries if e.get("name") != name]
        if len(kept) == len(entries):
            raise UsageError(f"{name} has no token in {file}")
        entries[:] = kept


def load_tokens(file: Path | None) -> Tokens | None:
    """The tokens of *file*, or None when no file is configured."""
    if file is None:
        return None
    try:
        return Tokens.load(file)
    except YamlError:
        raise
    except RunbookError as e:
        raise RunbookError(f"{file}: {e}") from e
