"""A plan's filters and facts conditions as one SQL clause over the catalog's index-key columns (core.catalog_keys).

The same tests `cond_holds` makes on a photo's Chroma metadata, made by the database on indexed
columns, so a count over a million photos reads an index instead of a million metadata dicts.
`None` means some condition names a key no column holds: the caller reads Chroma's metadata instead.
"""
from __future__ import annotations

from typing import Optional, Sequence

from core.catalog_keys import SqlWhere, UnsupportedKey
from core.chat.concepts import Cond


def _ids_in(sql: SqlWhere, ids: set[str]) -> str:
    if not ids:
        return "1=0"
    return "p.id IN (" + ",".join(sql.param(i) for i in sorted(ids)) + ")"


def _cond(sql: SqlWhere, c: Cond, semantic_ids: dict[str, set[str]]) -> str:
    """cond_holds in SQL: a search match (or the `also` text's match), else the key's test on photos that have it."""
    if c.key == "semantic":
        hit = _ids_in(sql, semantic_ids.get(str(c.value), set()))
        return f"NOT ({hit})" if c.negate else hit
    # parameters are bound in the order they are made, so each piece is made in the order it reads
    also = _ids_in(sql, semantic_ids.get(c.also, set())) if c.also else None
    base = f"({sql.present(c.key)} AND {'NOT ' if c.negate else ''}({sql.test(c.key, c.op, c.value)}))"
    if also is None:
        return base
    return f"(NOT ({also}) AND {base})" if c.negate else f"(({also}) OR {base})"


def plan_sql(where: Optional[dict], groups: Sequence[Sequence[Cond]], semantic_ids: dict[str, set[str]],
             topics: Sequence[str], must: Optional[set[str]] = None) -> Optional[tuple[str, list]]:
    """(clause, parameters) for: the `where` filters, every any-of group, and membership in `must` when given."""
    sql = SqlWhere(topics)
    try:
        parts = [sql.where(where)]
        parts += ["(" + " OR ".join(_cond(sql, c, semantic_ids) for c in g) + ")" for g in groups if g]
    except UnsupportedKey:
        return None
    if must is not None:
        parts.append(_ids_in(sql, must))
    return " AND ".join(parts), sql.params
