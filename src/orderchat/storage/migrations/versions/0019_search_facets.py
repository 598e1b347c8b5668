"""Search: on SQLite, a message's conversation, order and files are found by FTS5 too

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# The B-tree of (conversation, position) took a leaf page of its own per
# conversation written in a commit: with a shop's hundred busy conversations,
# twenty page writes a commit, two thirds of the search index's whole cost. As
# a second FTS5 column (`facets`: the ids, and `has_file` for a message with
# files; never ranked) the same filters ride the posting lists FTS5 writes
# anyway, and find their matches in a seek instead of checking every match of
# the words. `search_docs.facets` is computed on read, not stored: FTS5 reads
# it when it is fed and when it rebuilds. PostgreSQL keeps its B-tree.
_INDEX = "ix_search_docs_conv_id_doc_id"
_FACETS = (
    "ALTER TABLE search_docs ADD COLUMN facets TEXT GENERATED ALWAYS AS "
    "(conv_id || COALESCE(' ' || order_id, '') "
    "|| CASE WHEN has_file THEN ' has_file' ELSE '' END) VIRTUAL"
)
# Facets are the only terms with `_`: the tokenizer cuts words there (core/search.py).
# The per-row sizes table is back (0016 left it out): appended in position order it
# costs a commit little, and without it bm25 re-tokenized every row it ranked, both
# columns, a third of a best-first search's time.
_FTS = {
    "upgrade": (
        "CREATE VIRTUAL TABLE search_fts USING fts5(terms, facets, content='search_docs', "
        "content_rowid='doc_id', tokenize='unicode61 remove_diacritics 0 tokenchars ''_''')"
    ),
    "downgrade": (
        "CREATE VIRTUAL TABLE search_fts USING fts5(terms, content='search_docs', "
        "content_rowid='doc_id', tokenize='unicode61 remove_diacritics 0', columnsize=0)"
    ),
}
_TRIGGERS = {
    "upgrade": (
        """CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN
         INSERT INTO search_fts(search_fts, rowid, terms, facets)
           VALUES ('delete', old.doc_id, old.terms, old.facets);
       END""",
        """CREATE TRIGGER search_docs_au AFTER UPDATE OF terms ON search_docs BEGIN
         INSERT INTO search_fts(search_fts, rowid, terms, facets)
           VALUES ('delete', old.doc_id, old.terms, old.facets);
         INSERT INTO search_fts(rowid, terms, facets) VALUES (new.doc_id, new.terms, new.facets);
       END""",
    ),
    "downgrade": (
        """CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN
         INSERT INTO search_fts(search_fts, rowid, terms) VALUES ('delete', old.doc_id, old.terms);
       END""",
        """CREATE TRIGGER search_docs_au AFTER UPDATE OF terms ON search_docs BEGIN
         INSERT INTO search_fts(search_fts, rowid, terms) VALUES ('delete', old.doc_id, old.terms);
         INSERT INTO search_fts(rowid, terms) VALUES (new.doc_id, new.terms);
       END""",
    ),
}


def _drop_index_and_triggers() -> None:
    op.execute("DROP TRIGGER search_docs_ad")
    op.execute("DROP TRIGGER search_docs_au")
    op.execute("DROP TABLE search_fts")


def _build_index_and_triggers(direction: str) -> None:
    op.execute(_FTS[direction])
    op.execute("INSERT INTO search_fts(search_fts) VALUES ('rebuild')")
    for trigger in _TRIGGERS[direction]:
        op.execute(trigger)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_index_and_triggers()
    op.drop_index(_INDEX, table_name="search_docs")
    op.execute(_FACETS)
    _build_index_and_triggers("upgrade")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_index_and_triggers()
    op.execute("ALTER TABLE search_docs DROP COLUMN facets")
    op.create_index(_INDEX, "search_docs", ["conv_id", "doc_id"])
    _build_index_and_triggers("downgrade")
