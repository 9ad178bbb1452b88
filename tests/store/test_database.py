"""The store against a real PostgreSQL: schema persistence switch, idempotent schema."""

from __future__ import annotations

from typing import Any

import pytest

from tys_server.store.database import Store

SEED_UNLOGGED = ("count", "distance", "distance_history", "zone")


def persistence(db: Any) -> dict[str, str]:
    rows = db.query("SELECT relname, relpersistence FROM pg_class WHERE relkind = 'r' "
                    "AND relname = ANY(%s)", (list(SEED_UNLOGGED) + ["users", "devices"],))
    return dict(rows)


@pytest.mark.gen_test(timeout=30)
async def test_unlogged_switch_applies_and_reverts(db: Any) -> None:
    store = await Store.connect(db.dsn, pool_size=2, connect_timeout_s=3,
                                statement_timeout_s=10)
    try:
        await store.apply_schema(unlogged=True)
        tables = persistence(db)
        assert {name: tables[name] for name in SEED_UNLOGGED} == dict.fromkeys(SEED_UNLOGGED, "u")
        assert tables["users"] == tables["devices"] == "p"  # the seed kept these logged
        await store.apply_schema(unlogged=False)
        assert set(persistence(db).values()) == {"p"}
        await store.apply_schema(unlogged=False)  # idempotent: every start applies it
    finally:
        await store.close()
