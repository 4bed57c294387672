"""API keys and write keys, on SQLite and PostgreSQL: the secret is given once, kept as a digest with a short
prefix in clear, found by its secret until it is revoked; an unknown scope is refused by name."""

from __future__ import annotations

import pytest

from clm.access.keys import create_api_key, create_write_key, digest, find_api_key, find_write_key, revoke
from clm.access.models import ApiKey, WriteKey


def test_keys_are_found_by_their_secret_until_revoked_and_stored_only_as_a_digest(db):
    api, api_secret = create_api_key(db, "shop", ["customers:read", "events:read"])
    write, write_secret = create_write_key(db, "site")
    db.commit()
    assert api_secret.startswith("clm_") and len(api_secret) == 4 + 43 and api.prefix == api_secret[:10]
    assert write_secret.startswith("wk_") and len(write_secret) == 3 + 32 and write.prefix == write_secret[:9]
    assert (api.key_hash, write.key_hash) == (digest(api_secret), digest(write_secret))
    assert api.scopes == ["customers:read", "events:read"] and (api.name, write.name) == ("shop", "site")
    assert find_api_key(db, api_secret).id == api.id and find_write_key(db, write_secret).id == write.id
    assert find_api_key(db, write_secret) is None and find_write_key(db, api_secret) is None
    assert find_api_key(db, api_secret[:-1]) is None
    assert revoke(db, ApiKey, api.id) and not revoke(db, ApiKey, api.id)
    db.commit()
    assert find_api_key(db, api_secret) is None and find_write_key(db, write_secret).id == write.id
    assert revoke(db, WriteKey, write.id) and find_write_key(db, write_secret) is None


def test_an_unknown_scope_is_refused_by_name_and_no_key_is_made(db):
    with pytest.raises(ValueError, match="unknown scope 'customers:delete'"):
        create_api_key(db, "shop", ["customers:read", "customers:delete"])
    assert db.query(ApiKey).count() == 0
