"""Shadow copies of a projection's tables, and the swap that puts them live.

A shadow `{table}__rebuild` is created `LIKE` the live table (same columns in the
same order, defaults and check constraints) but without indexes, so COPY loads
it without maintaining them row by row; the live table's indexes and
index-backed constraints (primary key) are then built on the loaded shadow
under temporary names, from the live table's own definitions (`pg_get_indexdef`,
`pg_get_constraintdef`), so an index a migration added is rebuilt too. Grants
on the live table are repeated on the shadow.

`swap` (inside the caller's transaction) checks that the live table has not
changed shape since the shadow was made (a migration that ran meanwhile would
otherwise be undone), drops the live table and gives the shadow, its indexes
and its constraints the live names. Readers of the table wait for that
transaction only: a query that was waiting on the dropped table re-resolves the
name and reads the new one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from psycopg import AsyncConnection, sql

from projections.rebuild_errors import ShadowError

SUFFIX = "__rebuild"
_MAX_IDENTIFIER = 63  # Postgres truncates longer names

_INDEXES = """
SELECT ic.relname, pg_get_indexdef(i.indexrelid), c.conname, pg_get_constraintdef(c.oid)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
WHERE i.indrelid = %s::regclass
ORDER BY ic.relname
"""

_CONSTRAINTS = """
SELECT conname, contype::text, pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = %s::regclass ORDER BY conname
"""

_COLUMNS = """
SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum
"""

# Privileges granted on the live table (to roles other than its owner): LIKE does not copy them.
_GRANTS = """
SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(a.grantee::regrole::text) END, a.privilege_type
FROM pg_class c, aclexplode(c.relacl) a
WHERE c.oid = %s::regclass AND a.grantee <> c.relowner
"""

_INDEX_DEF = re.compile(r"^CREATE (UNIQUE )?INDEX (?:\S+|\"(?:[^\"]|\"\")+\") ON (?:ONLY )?\S+ (USING .+)$")


def shadow_name(name: str) -> str:
    return name[: _MAX_IDENTIFIER - len(SUFFIX)] + SUFFIX


class ShadowIndex(NamedTuple):
    temp: str  # its name on the shadow
    final: str  # the name it takes when the shadow goes live
    ddl: sql.Composed  # builds it on the shadow (several can run at once on one table)
    # For an index-backed constraint: makes the built index the constraint (renamed as one).
    attach: sql.Composed | None


@dataclass
class Shadow:
    """One live table, its shadow, and what the shadow must get before it goes live."""

    live: str
    shadow: str
    shape: list[tuple[Any, ...]] = field(default_factory=list)  # the live table's columns and indexes
    indexes: list[ShadowIndex] = field(default_factory=list)


async def _shape(conn: AsyncConnection[Any], table: str) -> list[tuple[Any, ...]]:
    columns = await (await conn.execute(_COLUMNS, (table,))).fetchall()
    indexes = await (await conn.execute(_INDEXES, (table,))).fetchall()
    # Index definitions name the table and the index; the shape compares the rest.
    return [
        *columns,
        *((name, _INDEX_DEF.sub(r"\1\2", ddl), con, condef) for name, ddl, con, condef in indexes),
    ]


async def create(conn: AsyncConnection[Any], live: str) -> Shadow:
    """A fresh, empty shadow of `live` (dropping one a crashed rebuild left behind)."""
    shadow = Shadow(live=live, shadow=shadow_name(live))
    contypes = {row[1] for row in await (await conn.execute(_CONSTRAINTS, (live,))).fetchall()}
    if "f" in contypes:
        raise ShadowError(f"{live} has foreign keys, which a shadow copy would not keep")
    shadow.shape = await _shape(conn, live)
    target = sql.Identifier(shadow.shadow)
    await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
    await conn.execute(
        sql.SQL(
            "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)"
        ).format(target, sql.Identifier(live))
    )
    for grantee, privilege in await (await conn.execute(_GRANTS, (live,))).fetchall():
        await conn.execute(
            sql.SQL("GRANT {} ON {} TO {}").format(sql.SQL(privilege), target, sql.SQL(grantee))
        )
    for index, ddl, constraint, condef in await (await conn.execute(_INDEXES, (live,))).fetchall():
        match = _INDEX_DEF.match(ddl)
        if match is None:
            raise ShadowError(f"cannot read the definition of index {index}: {ddl}")
        unique, rest = match.groups()
        temp = shadow_name(constraint or index)
        attach = None
        if constraint is not None:
            # An index-backed constraint (the primary key): its index is built like the others,
            # then made the constraint, whose name it takes.
            kind = condef.split(" (", 1)[0]
            if kind not in ("PRIMARY KEY", "UNIQUE"):
                raise ShadowError(f"{live}: cannot rebuild constraint {constraint} ({condef})")
            attach = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} USING INDEX {}").format(
                target, sql.Identifier(temp), sql.SQL(kind), sql.Identifier(temp)
            )
        ddl = sql.SQL("CREATE {}INDEX {} ON {} {}").format(
            sql.SQL(unique or ""), sql.Identifier(temp), target, sql.SQL(rest)
        )
        shadow.indexes.append(ShadowIndex(temp, constraint or index, ddl, attach))
    return shadow


async def finish(conn: AsyncConnection[Any], shadow: Shadow) -> None:
    """Once every `ShadowIndex.ddl` has run: attach the constraints' indexes, and give the
    planner statistics (a fresh table has none until autovacuum gets to it)."""
    for index in shadow.indexes:
        if index.attach is not None:
            await conn.execute(index.attach)
    await conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(shadow.shadow)))


async def swap(conn: AsyncConnection[Any], shadow: Shadow) -> None:
    """Inside the caller's transaction: drop the live table and put the shadow in its place."""
    live, target = sql.Identifier(shadow.live), sql.Identifier(shadow.shadow)
    await conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(live))
    if await _shape(conn, shadow.live) != shadow.shape:
        raise ShadowError(f"{shadow.live} changed (a migration?) while it was rebuilt: run the rebuild again")
    # Constraints not backed by an index (checks, and NOT NULL on Postgres 18) came with LIKE;
    # they take the live names too, matched by definition.
    live_names = {
        (t, d): n for n, t, d in await (await conn.execute(_CONSTRAINTS, (shadow.live,))).fetchall()
    }
    shadow_constraints = await (await conn.execute(_CONSTRAINTS, (shadow.shadow,))).fetchall()
    temp_indexes = {index.temp for index in shadow.indexes}
    await conn.execute(sql.SQL("DROP TABLE {}").format(live))
    await conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(target, live))
    for index in shadow.indexes:
        temp, final = sql.Identifier(index.temp), sql.Identifier(index.final)
        if index.attach is not None:
            await conn.execute(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(live, temp, final))
        else:
            await conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(temp, final))
    for name, contype, definition in shadow_constraints:
        live_name = live_names.get((contype, definition))
        if name not in temp_indexes and live_name is not None and live_name != name:
            await conn.execute(
                sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
                    live, sql.Identifier(name), sql.Identifier(live_name)
                )
            )


async def drop(conn: AsyncConnection[Any], shadow: Shadow) -> None:
    await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(shadow.shadow)))
