"""Protocol-harness calls for the text2sql server: one call (at least) for every tool."""

from __future__ import annotations

from pathlib import Path

STDIO_ONLY = {"text_to_sql"}  # the shipped model writes SQL for ~20 s; over HTTP the other tools run


def calls(workdir: Path) -> list[tuple[str, dict]]:
    """Calls against the demo database (built in the data dir on first use)."""
    return [
        ("sql_list_databases", {}),
        ("sql_search_schema", {"database": "shop", "pattern": "order*", "detail": "summary"}),
        ("sql_describe_table", {"database": "shop", "table": "orders", "sample_rows": 2}),
        ("sql_validate", {"database": "shop", "sql": "SELECT name FROM customers WHERE city = 'Paris'"}),
        ("sql_execute", {"database": "shop", "sql": "SELECT category, COUNT(*) AS n FROM products GROUP BY category",
                         "max_rows": 10}),
        ("sql_explain", {"database": "shop", "sql": "SELECT * FROM orders WHERE customer_id = 3"}),
        ("sql_add_example", {"database": "shop", "question": "How many products are there?",
                             "sql": "SELECT COUNT(*) FROM products;"}),
        ("sql_list_examples", {"database": "shop"}),
        ("sql_remove_example", {"database": "shop", "example_id": "seed-1"}),
        ("text_to_sql", {"database": "shop", "question": "How many products are there?", "candidates": 1,
                         "repair_rounds": 0}),
    ]


def concurrent_call(workdir: Path) -> tuple[str, dict]:
    """A read-only query many clients may run at once."""
    return ("sql_execute", {"database": "shop", "sql": "SELECT status, COUNT(*) AS n FROM orders GROUP BY status"})
