"""Demo database, catalog, introspection (SQLite and DuckDB), search, describe, validate, execute, explain."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import duckdb
import pytest
from mcp import Client

from protocol_tests.examples.text2sql import calls as protocol_examples
from servers.core.errors import ConfigError, InvalidInput, NotFound
from servers.core.settings import Settings, load_settings
from servers.text2sql import operations as ops
from servers.text2sql.catalog import Catalog
from servers.text2sql.database import Database, json_cell
from servers.text2sql.demo_db import DEMO_VERSION, ensure_demo_database
from servers.text2sql.server import build_server


def table_dump(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("customers", "products", "orders", "order_items")}
    finally:
        conn.close()


def test_demo_database_is_deterministic_and_realistic(tmp_path: Path) -> None:
    a = ensure_demo_database(tmp_path / "a")
    b = ensure_demo_database(tmp_path / "b")
    assert table_dump(a) == table_dump(b)
    data = table_dump(a)
    assert len(data["customers"]) >= 50 and len(data["orders"]) >= 200 and len(data["order_items"]) >= 400
    conn = sqlite3.connect(a)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == DEMO_VERSION
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []  # every foreign key resolves
    mtime = a.stat().st_mtime_ns
    assert ensure_demo_database(tmp_path / "a") == a and a.stat().st_mtime_ns == mtime  # not rebuilt


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Database:
    return Database("shop", str(ensure_demo_database(tmp_path_factory.mktemp("shop"))))


@pytest.fixture(scope="module")
def duck(tmp_path_factory: pytest.TempPathFactory) -> Database:
    path = tmp_path_factory.mktemp("duck") / "sales.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE region (region_id INTEGER PRIMARY KEY, name VARCHAR NOT NULL)")
    conn.execute("CREATE TABLE sale (sale_id INTEGER PRIMARY KEY, region_id INTEGER REFERENCES region(region_id), "
                 "sold_on DATE, amount DECIMAL(10, 2), tags VARCHAR[])")
    conn.execute("CREATE INDEX sale_date ON sale(sold_on)")
    conn.execute("CREATE VIEW big_sales AS SELECT * FROM sale WHERE amount > 100")
    conn.execute("INSERT INTO region VALUES (1, 'North'), (2, 'South')")
    conn.execute("INSERT INTO sale SELECT i, 1 + i % 2, DATE '2024-01-01' + CAST(i AS INTEGER), i * 10.5, ['a', 'b'] FROM range(1, 51) t(i)")
    conn.close()
    return Database("sales", f"duckdb:///{path}")


def test_sqlite_introspection(shop: Database) -> None:
    schema = shop.schema()
    assert {t.name for t in schema.tables} == {"customers", "products", "orders", "order_items", "order_totals"}
    items = schema.table("ORDER_ITEMS")  # case-insensitive
    assert items is not None and items.primary_key == ["order_item_id"]
    assert {(fk.columns[0], fk.ref_table, fk.ref_columns[0]) for fk in items.foreign_keys} == {
        ("order_id", "orders", "order_id"), ("product_id", "products", "product_id")}
    assert schema.table("order_totals").kind == "view"
    assert schema.table("orders").column("status").description.startswith("order status")  # sidecar descriptions
    assert schema.neighbours("orders") == {"customers", "order_items"}
    assert shop.schema() is schema  # cached while the file is unchanged


def test_duckdb_introspection_and_execution(duck: Database) -> None:
    schema = duck.schema()
    assert duck.dialect == "duckdb"
    sale = schema.table("sale")
    assert sale is not None and sale.primary_key == ["sale_id"]
    assert sale.foreign_keys[0].ref_table == "region" and sale.indexes[0].columns == ["sold_on"]
    assert schema.table("big_sales").kind == "view"
    result = ops.run_query(duck, "SELECT r.name, SUM(s.amount) AS total, MIN(s.sold_on) AS first, ANY_VALUE(s.tags) AS tags "
                                 "FROM sale s JOIN region r ON r.region_id = s.region_id GROUP BY r.name ORDER BY r.name",
                           max_rows=10, timeout_s=5)
    assert result.columns == ["name", "total", "first", "tags"]
    assert result.rows[0][0] == "North" and isinstance(result.rows[0][1], float) and result.rows[0][2] == "2024-01-03"
    assert result.rows[0][3] == ["a", "b"]
    capped = ops.run_query(duck, "SELECT * FROM sale", max_rows=7, timeout_s=5)
    assert capped.row_count == 7 and capped.truncated
    plan = ops.explain(duck, "SELECT * FROM sale WHERE region_id = 1", timeout_s=5).plan
    assert "SCAN" in plan.upper() or "sale" in plan
    with pytest.raises(InvalidInput, match="does not exist in table sale"):
        ops.run_query(duck, "SELECT s.amout FROM sale s", max_rows=1, timeout_s=5)
    desc = ops.describe_table(duck, "region", sample_rows=2, timeout_s=5)
    assert desc.row_count == 2 and desc.referenced_by == ["sale.region_id"]


def test_search_schema_detail_levels(shop: Database) -> None:
    names = ops.search_schema("shop", shop.schema(), "order*", object_type="table", detail="names")
    assert [o.name for o in names.objects] == ["order_items", "orders"] and names.objects[0].columns is None
    summary = ops.search_schema("shop", shop.schema(), "price", detail="summary")
    assert {(o.table, o.name) for o in summary.objects} >= {("products", "price"), ("order_items", "unit_price")}
    assert all(o.data_type is not None for o in summary.objects if o.type == "column")
    full = ops.search_schema("shop", shop.schema(), "orders", object_type="table", detail="full")
    assert full.objects[0].definition is not None and full.objects[0].definition.foreign_keys[0].ref_table == "customers"
    indexes = ops.search_schema("shop", shop.schema(), "idx_*", object_type="index", detail="summary")
    assert len(indexes.objects) == 4 and all(o.columns for o in indexes.objects)
    limited = ops.search_schema("shop", shop.schema(), "", limit=3)
    assert len(limited.objects) == 3 and limited.truncated and limited.total > 3
    views = ops.search_schema("shop", shop.schema(), "", object_type="view")
    assert [o.name for o in views.objects] == ["order_totals"]


def test_describe_table(shop: Database) -> None:
    desc = ops.describe_table(shop, "orders", sample_rows=3, timeout_s=5)
    assert desc.row_count == 220 and desc.sample.row_count == 3 and desc.primary_key == ["order_id"]
    status = next(c for c in desc.columns if c.name == "status")
    assert status.values == ["cancelled", "delivered", "pending", "shipped"] and status.distinct_count == 4
    customer = next(c for c in desc.columns if c.name == "customer_id")
    assert customer.references == "customers.customer_id" and customer.values is None
    assert desc.referenced_by == ["order_items.order_id"]
    with pytest.raises(NotFound, match="available: "):
        ops.describe_table(shop, "client", sample_rows=1, timeout_s=5)
    injected = 'orders"; DROP TABLE orders; --'
    with pytest.raises(NotFound):
        ops.describe_table(shop, injected, sample_rows=1, timeout_s=5)


@pytest.mark.parametrize(("sql", "fragment"), [
    ("SELECT nme FROM customers", "unknown column 'nme' (did you mean name?)"),
    ("SELECT * FROM customer", "unknown table 'customer' (did you mean customers?)"),
    ("SELECT c.nam FROM customers c", "column 'nam' does not exist in table customers"),
    ("SELECT x.name FROM customers c", "unknown table or alias 'x'"),
    ("SELECT name FROM customers WHERE city = \"Berlin\"", "use single quotes"),
    ("SELECT name FROM customers WHERE", "syntax error"),
    ("SELECT 1; SELECT 2", "2 statements found"),
])
def test_validate_reports_precise_problems(shop: Database, sql: str, fragment: str) -> None:
    report = ops.validate(shop, sql)
    assert not report.ok and any(fragment in p for p in report.problems), report.problems


@pytest.mark.parametrize("sql", [
    "SELECT c.name, SUM(i.quantity * i.unit_price) AS spent FROM customers c JOIN orders o ON o.customer_id = "
    "c.customer_id JOIN order_items i ON i.order_id = o.order_id GROUP BY c.customer_id ORDER BY spent DESC LIMIT 3",
    "WITH t AS (SELECT customer_id, COUNT(*) AS n FROM orders GROUP BY customer_id) SELECT MAX(n) FROM t",
    "SELECT strftime('%Y', order_date) AS y, COUNT(*) FROM orders GROUP BY y HAVING COUNT(*) > 1 ORDER BY y",
    "SELECT name FROM products WHERE product_id NOT IN (SELECT product_id FROM order_items)",
    "SELECT category FROM products UNION SELECT city FROM customers",
    "SELECT sub.n FROM (SELECT COUNT(*) AS n FROM customers) AS sub",
    "SELECT rowid, * FROM ORDERS WHERE status IN ('pending', 'shipped') LIMIT 2;",
    "SELECT total FROM order_totals ORDER BY total DESC LIMIT 1",
    "SELECT name, CASE WHEN price > 50 THEN 'high' ELSE 'low' END AS band, COALESCE(stock, 0) FROM products",
])
def test_valid_queries_pass_and_run(shop: Database, sql: str) -> None:
    report = ops.validate(shop, sql)
    assert report.ok, report.problems
    assert ops.run_query(shop, sql, max_rows=5, timeout_s=5).columns


def test_execute_caps_rows_and_converts_values(shop: Database) -> None:
    result = ops.run_query(shop, "SELECT * FROM order_items", max_rows=10, timeout_s=5)
    assert result.row_count == 10 and result.truncated and len(result.columns) == 5
    exact = ops.run_query(shop, "SELECT * FROM customers LIMIT 10", max_rows=10, timeout_s=5)
    assert exact.row_count == 10 and not exact.truncated
    blob = ops.run_query(shop, "SELECT x'00ff' AS b, 1.5 AS f, NULL AS n", max_rows=1, timeout_s=5)
    assert blob.rows == [["base64:AP8=", 1.5, None]]
    assert json_cell("x" * 5000)[1] is True


def test_explain_shows_the_plan(shop: Database) -> None:
    plan = ops.explain(shop, "SELECT * FROM orders WHERE customer_id = 3", timeout_s=5).plan
    assert "idx_orders_customer" in plan
    with pytest.raises(Exception, match="DELETE"):
        ops.explain(shop, "DELETE FROM orders", timeout_s=5)


def test_catalog_and_database_urls(tmp_path: Path, settings: Settings) -> None:
    src = ensure_demo_database(tmp_path / "src")
    settings.text2sql.databases = {"mine": str(src), "url": f"sqlite:///{src}", "missing": str(tmp_path / "no.db")}
    catalog = Catalog(settings)
    assert catalog.names() == ["mine", "url", "missing", "shop"]
    entries = {e.name: e for e in catalog.entries()}
    assert entries["mine"].tables == 5 and entries["url"].tables == 5 and entries["shop"].demo
    assert entries["missing"].error and "missing" in entries["missing"].error
    with pytest.raises(NotFound, match="available: mine, url, missing, shop"):
        catalog.get("nope")
    pg = Database("pg", "postgresql://reader:secret@db.example/sales")
    assert pg.dialect == "postgres" and "secret" not in pg.location
    with pytest.raises(ConfigError):
        Database("mem", "duckdb:///:memory:")
    with pytest.raises(ConfigError):
        Catalog(load_settings(overrides={"text2sql": {"databases": {"bad name!": "x.db"}}}))


def test_server_tools_through_mcp_client(settings: Settings) -> None:
    calls = [c for c in protocol_examples(settings.data_path) if c[0] != "text_to_sql"]

    async def go():
        async with Client(build_server(settings)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            results = [await client.call_tool(name, args) for name, args in calls]
            bad_db = await client.call_tool("sql_execute", {"database": "nope", "sql": "SELECT 1"})
            return tools, results, bad_db

    tools, results, bad_db = asyncio.run(go())
    assert set(tools) == {"sql_list_databases", "sql_search_schema", "sql_describe_table", "sql_validate",
                          "sql_execute", "sql_explain", "text_to_sql", "sql_add_example", "sql_list_examples",
                          "sql_remove_example"}
    assert all(t.output_schema and len(t.description) > 60 for t in tools.values())
    assert set(tools) == {name for name, _ in protocol_examples(settings.data_path)}
    for (name, _), result in zip(calls, results, strict=True):
        assert not result.is_error, (name, result.content)
    by_name = dict(zip([c[0] for c in calls], results, strict=True))
    assert by_name["sql_execute"].structured_content["row_count"] == 6
    listed = by_name["sql_list_examples"].structured_content["examples"]
    assert any(e["question"] == "How many products are there?" for e in listed) and len(listed) >= 10
    assert bad_db.is_error and "available: shop" in bad_db.content[0].text


def test_sql_execute_pages_cover_every_row(tmp_path: Path) -> None:
    from servers.text2sql import api

    settings = load_settings(overrides={"data_dir": str(tmp_path / "data"), "text2sql": {"max_rows": 25}})
    sql = "SELECT customer_id FROM customers ORDER BY customer_id"
    ids, offset, pages = [], 0, 0
    while offset is not None:
        page = api.execute(settings, sql, database="shop", offset=offset)
        assert page.offset == offset and page.row_count <= 25
        ids += [row[0] for row in page.rows]
        offset, pages = page.next_offset, pages + 1
    assert pages == 3 and ids == list(range(1, 61))
    assert api.execute(settings, sql, database="shop", offset=60).rows == []
