"""The secret that keys the audit trail's HMAC chain: never stored in the database it protects.

Where the key comes from, first match wins:

1. ``ABSCOPAL_AUDIT_KEY`` — the key itself (any string of at least 32 characters; hex from a secrets manager).
2. ``ABSCOPAL_AUDIT_KEY_FILE`` — a file holding it.
3. SQLite: ``<database file>.audit-key`` next to the database file.
4. PostgreSQL: ``<ABSCOPAL_AUDIT_KEY_DIR or the user data directory>/audit-keys/<host>-<port>-<database>.key``.

A missing key file is created (32 random bytes, hex, permissions 0600) only when the database has no audit key
yet (a new database, or the migration that introduced the key); afterwards a missing or different key is an
error, because a new key would make the whole trail look forged. On a multi-site PostgreSQL deployment keep the
key on the application servers (or in the secrets manager) and out of the database server's reach.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from platformdirs import user_data_dir
from sqlalchemy.engine import URL

from abscopal.errors import StoreError

_MIN_LENGTH = 32


def key_location(url: URL) -> Path | None:
    """The key file for a database URL, or None when the key comes from ``ABSCOPAL_AUDIT_KEY``."""
    if os.environ.get("ABSCOPAL_AUDIT_KEY"):
        return None
    explicit = os.environ.get("ABSCOPAL_AUDIT_KEY_FILE")
    if explicit:
        return Path(explicit).expanduser()
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database.startswith("file:"):  # a read-only engine opens an SQLite URI filename (mode=ro)
            database = database.removeprefix("file:").split("?", 1)[0]
        if not database or database == ":memory:" or "mode=memory" in (url.database or ""):
            return None
        path = Path(database).expanduser().resolve()
        return path.with_name(path.name + ".audit-key")
    base = Path(os.environ.get("ABSCOPAL_AUDIT_KEY_DIR") or Path(user_data_dir("abscopal", appauthor=False)))
    safe = f"{url.host or 'localhost'}-{url.port or 5432}-{url.database or 'postgres'}".replace("/", "_")
    return base / "audit-keys" / f"{safe}.key"


_MEMORY_KEYS: dict[str, bytes] = {}


def load_key(url: URL, *, create: bool) -> bytes:
    """The audit key for ``url``; with ``create``, make a new key file when there is none."""
    env = os.environ.get("ABSCOPAL_AUDIT_KEY")
    if env:
        if len(env) < _MIN_LENGTH:
            raise StoreError(f"ABSCOPAL_AUDIT_KEY must be at least {_MIN_LENGTH} characters long")
        return env.encode("utf-8")
    path = key_location(url)
    if path is None:  # an in-memory SQLite database: the key lives as long as the process
        return _MEMORY_KEYS.setdefault(str(url), secrets.token_hex(32).encode())
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        if not create:
            raise StoreError(
                f"The audit key file {path} is missing, so the audit trail cannot be written or verified; restore it "
                "from your backup or set ABSCOPAL_AUDIT_KEY (see docs/architecture.md, 'The audit key')"
            ) from None
        return _create(path)
    except OSError as exc:
        raise StoreError(f"The audit key file {path} cannot be read ({exc.strerror})") from None
    if len(text) < _MIN_LENGTH:
        raise StoreError(f"The audit key file {path} is too short to be a key (at least {_MIN_LENGTH} characters)")
    return text.encode("utf-8")


def _create(path: Path) -> bytes:
    key = secrets.token_hex(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_text(encoding="utf-8").strip().encode("utf-8")
    except OSError as exc:
        raise StoreError(f"Cannot create the audit key file {path} ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    return key.encode("utf-8")


def key_id(key: bytes) -> str:
    """A fingerprint of the key stored in the audit head, so a wrong key is told apart from tampering."""
    return hmac.new(key, b"abscopal audit key id", hashlib.sha256).hexdigest()[:16]


def mac(key: bytes, payload: bytes) -> str:
    """HMAC-SHA256 (RFC 2104) of ``payload`` under ``key``, as hex."""
    return hmac.new(key, payload, hashlib.sha256).hexdigest()
