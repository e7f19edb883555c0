"""Shared fixtures for the text2sql tests, and the attack corpus (SQLite demo schema)."""

from __future__ import annotations

import pytest

# (sql, kind): kind says which error is acceptable. "refused": read-only/AST refusal; "invalid": a
# clear invalid-SQL error; "timeout": stopped by the time limit; "too_large": a size limit.
ATTACKS: list[tuple[str, str]] = [
    ("DELETE FROM orders", "refused"),
    ("dElEtE FROM orders", "refused"),
    ("DELETE\tFROM\norders", "refused"),
    ("DROP TABLE customers", "refused"),
    ("INSERT INTO customers VALUES (999, 'x', 'x@x', 'x', 'x', '2024-01-01')", "refused"),
    ("UPDATE products SET price = 0.01", "refused"),
    ("REPLACE INTO products VALUES (1, 'x', 'x', 1, 1)", "refused"),
    ("INSERT OR REPLACE INTO products VALUES (1, 'x', 'x', 1, 1)", "refused"),
    ("SELECT 1; DROP TABLE customers", "refused"),
    ("SELECT * FROM customers; DELETE FROM orders;", "refused"),
    ("SELECT 1 UNION SELECT name FROM customers; UPDATE products SET price = 0", "refused"),
    ("SELECT * FROM customers WHERE name = 'x'; DROP TABLE customers; --'", "refused"),
    ("/* harmless */ DELETE FROM orders", "refused"),
    ("SELECT 1 /* ; */; DELETE FROM orders --", "refused"),
    ("DELETE FROM orders -- SELECT * FROM orders", "refused"),
    ("WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", "refused"),
    ("WITH x AS (SELECT 1) DELETE FROM orders", "refused"),
    ("WITH x AS (SELECT 1) INSERT INTO customers SELECT * FROM customers", "refused"),
    ("WITH u AS (UPDATE products SET price = 0 RETURNING *) SELECT count(*) FROM u", "refused"),
    ("ATTACH DATABASE '{tmp}/evil.db' AS evil", "refused"),
    ("ATTACH 'file:{tmp}/evil2.db?mode=rwc' AS e2", "refused"),
    ("DETACH DATABASE main", "refused"),
    ("PRAGMA writable_schema = ON", "refused"),
    ("PRAGMA query_only = OFF", "refused"),
    ("PRAGMA journal_mode = DELETE", "refused"),
    ("PRAGMA table_info(customers)", "refused"),
    ("VACUUM", "refused"),
    ("VACUUM INTO '{tmp}/copy.db'", "refused"),
    ("SELECT load_extension('{tmp}/evil.so')", "refused"),
    ("SELECT writefile('{tmp}/pwn.txt', 'x')", "refused"),
    ("SELECT readfile('/etc/passwd')", "refused"),
    ("CREATE TABLE evil (x)", "refused"),
    ("CREATE TEMP TABLE evil (x)", "refused"),
    ("CREATE VIEW v AS SELECT 1", "refused"),
    ("CREATE TRIGGER t AFTER INSERT ON orders BEGIN DELETE FROM orders; END", "refused"),
    ("ALTER TABLE customers RENAME TO c2", "refused"),
    ("BEGIN; DELETE FROM orders; COMMIT", "refused"),
    ("BEGIN IMMEDIATE", "refused"),
    ("SAVEPOINT s1", "refused"),
    ("REINDEX", "refused"),
    ("ANALYZE", "refused"),
    ("SELECT * INTO backup FROM customers", "refused"),
    ("SELECT * FROM customers FOR UPDATE", "refused"),
    ("EXPLAIN DELETE FROM orders", "refused"),
    ("SELECT * FROM pragma_table_info('customers')", "refused"),
    ('SELECT * FROM "customers""; DROP TABLE customers; --"', "invalid"),
    ('SELECT "name""; DELETE FROM orders; --" FROM customers', "invalid"),
    ("SELECT * FROM sqlite_master", "invalid"),
    ("", "invalid"),
    (";;;", "invalid"),
    ("SELECT * FROM customers c1, customers c2, customers c3, customers c4, customers c5, customers c6 "
     "ORDER BY random()", "timeout"),
    ("SELECT count(*) FROM order_items a, order_items b, order_items c, order_items d", "timeout"),
    ("WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r", "timeout"),
    ("SELECT length(randomblob(1000000000))", "too_large"),
    ("SELECT length(zeroblob(2000000000))", "too_large"),
]


@pytest.fixture(scope="session")
def attacks() -> list[tuple[str, str]]:
    """SQL that must neither change a database nor hang the server: (sql, expected error kind)."""
    return ATTACKS
