"""Test helper: is a query valid Trino (Athena) SQL that also means the same on DuckDB?

Lives with the tests because it needs sqlglot (a dev extra); nothing in the package
uses it at run time.

``sqlglot.parse_one(sql, read="trino")`` catches syntax errors but accepts several
DuckDB-isms. :func:`trino_problems` closes the gap three ways (see docs/analytics.md):

1. tokens DuckDB accepts and Trino does not (``::``, ILIKE, QUALIFY, GROUP BY ALL,
   ``* EXCLUDE``, lambdas) are rejected outright;
2. the parsed query is regenerated as Trino and its tokens compared with the original:
   any rewrite means the original used a non-Trino spelling;
3. every function called must be on an allowlist of names that both engines spell and
   mean the same (or that ``views.TRINO_SHIMS`` bridges).
"""

from __future__ import annotations

import runpy
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import sqlglot
from sqlglot import Token, TokenType, exp
from sqlglot.errors import OptimizeError, ParseError
from sqlglot.optimizer.qualify import qualify

from sim_serverless_sweep.analytics.summary import point_summary_sql
from sim_serverless_sweep.analytics.views import TRINO_SHIMS
from sim_serverless_sweep.core.keys import ALL_DATASETS
from sim_serverless_sweep.core.schemas import DATASET_SCHEMAS

GLUE_GENERATOR = (
    Path(__file__).resolve().parents[2] / "infra" / "aws_serverless_sweep" / "gen_glue_columns.py"
)

# Function names with the same spelling and meaning in Trino and DuckDB (sql.md), plus
# the shimmed ones. Keep it short: every addition should be checked on both engines.
# Left out on purpose (sql.md: same text, different answer): greatest/least with NULLs,
# concat with NULLs, date_trunc on a DATE.
PORTABLE_FUNCTIONS: frozenset[str] = frozenset(
    {
        # aggregates
        "count",
        "count_if",
        "sum",
        "avg",
        "min",
        "max",
        "arbitrary",
        "max_by",
        "min_by",
        "bool_and",
        "bool_or",
        "stddev",
        "stddev_samp",
        "stddev_pop",
        "variance",
        "var_samp",
        "var_pop",
        "corr",
        "array_agg",
        # window
        "row_number",
        "rank",
        "dense_rank",
        "lag",
        "lead",
        "first_value",
        "last_value",
        # scalar
        "coalesce",
        "nullif",
        "if",
        "try_cast",
        "cast",
        "abs",
        "round",
        "floor",
        "ceil",
        "sqrt",
        "power",
        "ln",
        "exp",
        "lower",
        "upper",
        "trim",
        "substr",
        "strpos",
        "split_part",
        "length",
        "cardinality",
        "contains",
        "year",
        "month",
        "day",
        "hour",
    }
    | set(TRINO_SHIMS)
)

# Token types that DuckDB accepts and Athena rejects (or reads differently).
_BANNED_TOKENS: dict[TokenType, str] = {
    TokenType.DCOLON: "'::' casts are DuckDB/Postgres only; use CAST(x AS type)",
    TokenType.ILIKE: "ILIKE is not Trino; use lower(x) LIKE lower(pattern)",
    TokenType.QUALIFY: "QUALIFY is not Trino; filter a window in an outer query",
    TokenType.ARROW: "lambdas (x -> ...) differ between DuckDB and Trino",
    TokenType.ASOF: "ASOF joins are DuckDB only",
    TokenType.GLOB: "GLOB is DuckDB only; use LIKE",
}


def _tokens(sql: str) -> list[Token]:
    return list(sqlglot.Dialect.get_or_raise("trino").tokenize(sql))


def _normal(token: Token) -> tuple[str, str]:
    kind = token.token_type
    if kind in (TokenType.STRING, TokenType.IDENTIFIER):
        return (kind.name, token.text)
    if kind in (TokenType.NEQ,):
        return (kind.name, "")
    return (kind.name, token.text.upper())


def trino_problems(sql: str, schema: Mapping[str, Mapping[str, str]] | None = None) -> list[str]:
    """Reasons ``sql`` is not portable Trino SQL; an empty list means it is.

    With ``schema`` ({table: {column: type}}), every column reference must also resolve
    under Trino's scoping: a SELECT alias used in WHERE or GROUP BY (DuckDB allows it,
    Athena does not) or a misspelt column is reported.

    >>> trino_problems("SELECT a, count(*) FROM t GROUP BY ALL")
    ['GROUP BY ALL is DuckDB only; list the grouping columns']
    >>> trino_problems("SELECT count_if(x > 1) FROM t")
    []
    """
    text = sql.strip().rstrip(";")
    try:
        parsed = sqlglot.parse_one(text, read="trino")
    except ParseError as exc:
        return [f"not valid Trino SQL: {exc}"]
    tokens = _tokens(text)
    problems: list[str] = []
    for i, token in enumerate(tokens):
        if token.token_type in _BANNED_TOKENS:
            problems.append(_BANNED_TOKENS[token.token_type])
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if token.token_type == TokenType.GROUP_BY and nxt and nxt.token_type == TokenType.ALL:
            problems.append("GROUP BY ALL is DuckDB only; list the grouping columns")
        if (
            token.token_type == TokenType.STAR
            and nxt
            and nxt.text.upper() in ("EXCLUDE", "EXCEPT", "REPLACE")
        ):
            problems.append(f"SELECT * {nxt.text.upper()} is DuckDB only; list the columns")
        previous = tokens[i - 1].token_type if i else None
        if token.token_type == TokenType.UNION and nxt and nxt.text.upper() == "BY":
            problems.append("UNION BY NAME is DuckDB only; list the columns in both arms")
        if (
            token.token_type == TokenType.LIKE
            and nxt
            and nxt.token_type
            in (
                TokenType.ANY,
                TokenType.ALL,
            )
        ):
            problems.append("LIKE ANY/ALL is DuckDB only; OR the LIKE conditions")
        if (
            previous in (TokenType.FROM, TokenType.JOIN)
            and token.token_type != TokenType.UNNEST
            and nxt is not None
            and nxt.token_type == TokenType.L_PAREN
            and token.token_type != TokenType.L_PAREN
        ):
            problems.append(
                f"table function {token.text}() in FROM is not portable (Trino has UNNEST)"
            )
        if (
            token.token_type == TokenType.VAR
            and nxt is not None
            and nxt.token_type == TokenType.L_PAREN
            and previous not in (TokenType.DOT, TokenType.ALIAS, TokenType.STAR)
        ):
            name = token.text.lower()
            if name not in PORTABLE_FUNCTIONS:
                problems.append(
                    f"function {token.text}() is not on the portable list "
                    "(Trino and DuckDB may differ); see docs/analytics.md"
                )
    if problems:
        return problems
    if schema is not None:
        try:
            tables: dict[str, object] = {k: dict(v) for k, v in schema.items()}
            qualify(
                parsed.copy(),
                schema=tables,
                dialect="trino",
                validate_qualify_columns=True,
                expand_alias_refs=False,
            )
        except OptimizeError as exc:
            return [f"column reference does not resolve under Trino scoping: {exc}"]
    regenerated = [_normal(t) for t in _tokens(parsed.sql(dialect="trino"))]
    original = [_normal(t) for t in tokens]
    if regenerated != original:
        for i, (a, b) in enumerate(zip(original, regenerated, strict=False)):
            if a != b:
                problems.append(
                    f"non-Trino spelling near token {i} ({a[1] or a[0]!r}): "
                    f"Trino would write {b[1] or b[0]!r}"
                )
                break
        else:
            problems.append("non-Trino spelling: regenerating as Trino changed the query's length")
    return problems


# The Glue tables' own column types (Hive names), in Trino spelling.
_glue_type = runpy.run_path(str(GLUE_GENERATOR))["glue_type"]
_TRINO_NAMES = {"string": "VARCHAR", "int": "INTEGER", "float": "REAL"}


def _sql_type(arrow_type: pa.DataType) -> str:
    hive = str(_glue_type(arrow_type))
    return _TRINO_NAMES.get(hive, hive.upper())


def table_schemas() -> dict[str, dict[str, str]]:
    """{table: {column: SQL type}} of every table a query may read, as Athena sees them.

    The four datasets as the Glue tables declare them (writer schema + the run_date
    partition; ``status`` exists only in shard_outcomes there) and the point_summary view.
    """
    tables: dict[str, dict[str, str]] = {}
    for dataset in ALL_DATASETS:
        columns = {f.name: _sql_type(f.type) for f in DATASET_SCHEMAS[dataset]}
        columns["run_date"] = "DATE"
        tables[dataset] = columns
    known: dict[str, object] = dict(tables)
    summary = qualify(
        sqlglot.parse_one(point_summary_sql(), read="trino"), schema=known, dialect="trino"
    )
    assert isinstance(summary, exp.Query)
    tables["point_summary"] = {name: "DOUBLE" for name in summary.named_selects}
    return tables
