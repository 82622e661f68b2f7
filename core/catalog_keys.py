"""The photo's index keys (the Chroma metadata that Search and Chat filter on) as catalog columns, for SQL counts.

Chat counted by reading every indexed photo's metadata out of Chroma, twice per question: 22 s at
100k photos (bench/bench_million.py), minutes at a million. The same keys come from two owners the
catalog already holds: the photo facts (summary columns, schema 4, and `facts_terms` below, schema 6)
and the effective annotations (`annotation_values`, core.annotations.store). `KEYS` maps each key
to its SQL, so a filter written as a Chroma `where` or as a Chat condition reads indexed columns.

`facts_terms` holds the facts that are not numbers, one comma-framed text
(",setting:indoor,portrait,mono,det:dog,col:white,"), so `LIKE '%,det:dog,%'` tests a detected
object. It is written from `PhotoFacts.index_metadata()`, the function Chroma's metadata comes
from, so the two never disagree on what a photo has.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Optional

from core.annotate.prompts import DIMENSIONS

if TYPE_CHECKING:  # pragma: no cover
    from core.db import Database
    from core.facts import PhotoFacts

FACTS_PRESENT = "p.facts_version IS NOT NULL"  # a photo without facts has none of the facts keys
ANNOTATED = "v.photo_id IS NOT NULL"


def facts_terms(facts: "Optional[PhotoFacts]") -> Optional[str]:
    """The comma-framed terms of one photo's facts (None without facts)."""
    if facts is None:
        return None
    meta = facts.index_metadata()
    terms = [f"setting:{meta['setting']}"] if meta.get("setting") else []
    terms += ["portrait"] if meta.get("portrait") else []
    terms += ["mono"] if meta.get("monochrome") else []
    terms += [f"det:{d}" for d in meta.get("detected") or [] if d]
    terms += [f"col:{c}" for c in meta.get("colours") or [] if c]
    return "," + ",".join(terms) + "," if terms else ","


@dataclass(frozen=True)
class Key:
    """How one index key reads in SQL: `value` its expression, `present` when a photo has the key at all."""

    value: str
    present: str
    kind: str  # "number", "text", "bool", "term" (a flag in facts_terms), "terms" (a list: prefix in facts_terms)
    prefix: str = ""


KEYS: dict[str, Key] = {
    "has_people": Key("p.facts_people > 0", FACTS_PRESENT, "bool"),
    "people_count": Key("p.facts_people", FACTS_PRESENT, "number"),
    "has_text": Key("p.facts_ntext > 0", FACTS_PRESENT, "bool"),
    "scene": Key("p.facts_scene", FACTS_PRESENT, "text"),
    "facts_version": Key("p.facts_version", FACTS_PRESENT, "number"),
    "setting": Key("p.facts_terms", FACTS_PRESENT, "terms", "setting:"),
    "portrait": Key("p.facts_terms", FACTS_PRESENT, "term", "portrait"),
    "monochrome": Key("p.facts_terms", FACTS_PRESENT, "term", "mono"),
    "detected": Key("p.facts_terms", FACTS_PRESENT, "terms", "det:"),
    "colours": Key("p.facts_terms", FACTS_PRESENT, "terms", "col:"),
    "class_name": Key("p.class_name", "1=1", "text"),
    "sentiment": Key("v.sentiment", "v.sentiment IS NOT NULL", "text"),
    "sentiment_caption": Key("v.sentiment_caption", "v.sentiment_caption IS NOT NULL", "text"),
    "sentiment_image": Key("v.sentiment_image", "v.sentiment_image IS NOT NULL", "text"),
    "sentiment_score": Key("v.sentiment_score", "v.sentiment_score IS NOT NULL", "number"),
    **{d: Key(f"v.{d.lower()}", f"v.{d.lower()} IS NOT NULL", "number") for d in DIMENSIONS},
}
TOPIC_PREFIX = "topic_"  # topic_<name>: a photo's effective topics hold <name> (annotation_values.topics)


class UnsupportedKey(KeyError):
    """A filter names a key no column answers (ImageNet object words, landscape cues): the caller reads
    Chroma's metadata instead (core.chat.retriever)."""


def _like(text: str) -> str:
    return "%," + text.replace("!", "!!").replace("%", "!%").replace("_", "!_") + ",%"


class SqlWhere:
    """Builds one WHERE clause with its parameters, from index keys and conditions."""

    def __init__(self, topics: Iterable[str] = ()):
        from core.annotate.prompts import topic_key

        self.params: list[Any] = []
        self._topics = {topic_key(t): t for t in topics}  # topic_<key> -> the name annotation_values holds

    def param(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def present(self, key: str) -> str:
        if key.startswith(TOPIC_PREFIX):
            return ANNOTATED
        return self._key(key).present

    def _key(self, key: str) -> Key:
        if key not in KEYS:
            raise UnsupportedKey(key)
        return KEYS[key]

    def test(self, key: str, op: str, value: Any) -> str:
        """SQL true when the photo's `key` meets (op, value); ops: eq, ne, ge, le, gt, lt, in, has (list membership)."""
        if key.startswith(TOPIC_PREFIX):
            name = self._topics.get(key)
            if name is None:
                raise UnsupportedKey(key)  # a topic no photo holds: Chroma (or nothing) answers
            has = f"v.topics LIKE {self.param(_like(name))} ESCAPE '!'"
            return has if bool(value) == (op != "ne") else f"NOT ({has})"
        k = self._key(key)
        if k.kind in ("term", "terms"):
            if k.kind == "term":
                has = f"{k.value} LIKE {self.param(_like(k.prefix))} ESCAPE '!'"
                return has if bool(value) == (op != "ne") else f"NOT ({has})"
            values = value if op == "in" else [value]
            ors = " OR ".join(f"{k.value} LIKE {self.param(_like(k.prefix + str(v).lower()))} ESCAPE '!'" for v in values)
            return f"({ors or '1=0'})" if op != "ne" else f"NOT ({ors})"
        if k.kind == "bool":
            return k.value if bool(value) == (op != "ne") else f"NOT ({k.value})"
        if op == "in":
            return f"{k.value} IN ({','.join(self.param(v) for v in value)})" if value else "1=0"
        sql_op = {"eq": "=", "ne": "<>", "ge": ">=", "le": "<=", "gt": ">", "lt": "<"}[op]
        return f"{k.value} {sql_op} {self.param(value)}"

    def where(self, where: Optional[dict]) -> str:
        """A Chroma `where` ({"$and": [...]}, {"key": value}, {"key": {"$gte": n}}, $contains, $in, $ne) as SQL."""
        if not where:
            return "1=1"
        if "$and" in where or "$or" in where:
            joiner = " AND " if "$and" in where else " OR "
            return "(" + joiner.join(self.where(w) for w in where.get("$and") or where.get("$or")) + ")"
        parts = []
        for key, cond in where.items():
            op, value = next(iter(cond.items())) if isinstance(cond, dict) else ("$eq", cond)
            op = {"$eq": "eq", "$ne": "ne", "$gte": "ge", "$lte": "le", "$gt": "gt", "$lt": "lt", "$in": "in",
                  "$contains": "has"}[op]
            # Chroma's where leaves out photos without the key, whatever the test
            parts.append(f"({self.present(key)} AND {self.test(key, op, value)})")
        return " AND ".join(parts)


class KeyQueries:
    """Mixed into core.catalog.Catalog: photo ids and sort values by index keys, read from columns."""

    db: "Database"

    _FROM = ("FROM photos p JOIN indexed i ON i.photo_id = p.id AND i.model_id = ? "
             "LEFT JOIN annotation_values v ON v.photo_id = p.id WHERE p.missing = 0 AND ")

    def key_rows(self, model_id: str, sql: str, params: Iterable[Any] = (), *, sort_key: Optional[str] = None) -> list[tuple]:
        """(id, added_at, path, taken_at, sort value) of the present photos indexed by `model_id` where `sql` holds
        (a clause from SqlWhere, over `p` = photos and `v` = annotation_values)."""
        sort = KEYS[sort_key].value if sort_key else "NULL"
        with self.db.connect() as con:
            return [tuple(r) for r in con.execute(f"SELECT p.id, p.added_at, p.path, p.taken_at, {sort} " + self._FROM + sql,
                                                  [model_id, *params]).fetchall()]

    def key_exists(self, model_id: str, where: dict) -> bool:
        """Whether any present photo indexed by `model_id` passes a Chroma-style `where` (e.g. has a sentiment)."""
        sql = SqlWhere()
        clause = sql.where(where)
        with self.db.connect() as con:
            return con.execute("SELECT 1 " + self._FROM + clause + " LIMIT 1", [model_id, *sql.params]).fetchone() is not None

    def key_vocabulary(self) -> dict:
        """Scene names, topic names, and whether facts (and detector facts of `version`) exist: what Chat's lexicon needs."""
        from core.facts import FACTS_VERSION

        with self.db.connect() as con:
            scenes = sorted({r[0] for r in con.execute("SELECT DISTINCT facts_scene FROM photos WHERE missing=0 AND facts_version IS NOT NULL")
                             if r[0]})
            has_facts = con.execute("SELECT 1 FROM photos WHERE missing=0 AND facts_version >= 1 LIMIT 1").fetchone() is not None
            detected = con.execute("SELECT 1 FROM photos WHERE missing=0 AND facts_version >= ? LIMIT 1",
                                   (FACTS_VERSION,)).fetchone() is not None
        return {"scenes": scenes, "has_facts": has_facts, "detected": detected, "topics": self.topic_names()}

    def topic_names(self) -> list[str]:
        """The topics some photo's effective annotations hold."""
        with self.db.connect() as con:
            return sorted({t for r in con.execute("SELECT DISTINCT topics FROM annotation_values WHERE topics IS NOT NULL")
                           for t in str(r[0]).split(",") if t.strip()})


__all__ = ["KEYS", "Key", "KeyQueries", "SqlWhere", "UnsupportedKey", "facts_terms"]
