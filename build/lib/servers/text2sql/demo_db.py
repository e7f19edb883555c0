"""The demo ``shop`` database: customers, products, orders and order items (SQLite, seeded).

Built deterministically (same seed → same bytes of data) the first time it is needed, under
``DATA_DIR/text2sql/shop.sqlite``, next to ``shop.descriptions.json`` (column descriptions the
schema linker and the prompt use). A version number in ``PRAGMA user_version`` rebuilds it when
this module changes.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import uuid
from datetime import date, timedelta
from pathlib import Path

DEMO_VERSION = 3
SEED = 20240607

SCHEMA = """
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    signup_date TEXT NOT NULL
);
CREATE TABLE products (
    product_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price REAL NOT NULL CHECK (price > 0),
    stock INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(customer_id),
    order_date TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'shipped', 'delivered', 'cancelled'))
);
CREATE TABLE order_items (
    order_item_id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(order_id),
    product_id INTEGER NOT NULL REFERENCES products(product_id),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    unit_price REAL NOT NULL
);
CREATE INDEX idx_orders_customer ON orders(customer_id);
CREATE INDEX idx_orders_date ON orders(order_date);
CREATE INDEX idx_items_order ON order_items(order_id);
CREATE INDEX idx_items_product ON order_items(product_id);
CREATE VIEW order_totals AS
    SELECT o.order_id, o.customer_id, o.order_date, o.status,
           SUM(i.quantity * i.unit_price) AS total
    FROM orders o JOIN order_items i ON i.order_id = o.order_id
    GROUP BY o.order_id;
"""

DESCRIPTIONS: dict[str, dict[str, str]] = {
    "customers": {
        "": "people who buy from the shop",
        "customer_id": "unique id of the customer",
        "name": "full name of the customer",
        "email": "email address of the customer",
        "city": "city where the customer lives",
        "country": "country where the customer lives",
        "signup_date": "date the customer registered (YYYY-MM-DD)",
    },
    "products": {
        "": "items the shop sells",
        "product_id": "unique id of the product",
        "name": "product name",
        "category": "product category",
        "price": "current list price in euros",
        "stock": "units in stock",
    },
    "orders": {
        "": "purchases made by customers",
        "order_id": "unique id of the order",
        "customer_id": "the customer who placed the order",
        "order_date": "date the order was placed (YYYY-MM-DD)",
        "status": "order status: pending, shipped, delivered or cancelled",
    },
    "order_items": {
        "": "products and quantities in each order (one line per product)",
        "order_item_id": "unique id of the order line",
        "order_id": "the order this line belongs to",
        "product_id": "the product bought",
        "quantity": "number of units bought",
        "unit_price": "price paid per unit in euros",
    },
    "order_totals": {
        "": "one row per order with its total amount spent",
        "total": "total amount of the order in euros (sum of quantity * unit_price)",
    },
}

FIRST = ["Alice", "Bruno", "Chloe", "Daniel", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas",
         "Keiko", "Liam", "Maya", "Nikolai", "Olivia", "Pablo", "Quinn", "Rosa", "Samir", "Tara"]
LAST = ["Martin", "Schmidt", "Rossi", "Garcia", "Dubois", "Novak", "Jensen", "Silva", "Kowalski",
        "Moreau", "Fischer", "Costa", "Larsen", "Bianchi", "Weber"]
PLACES = [("Paris", "France"), ("Lyon", "France"), ("Berlin", "Germany"), ("Munich", "Germany"),
          ("Madrid", "Spain"), ("Barcelona", "Spain"), ("Rome", "Italy"), ("Milan", "Italy"),
          ("Lisbon", "Portugal"), ("Amsterdam", "Netherlands"), ("Warsaw", "Poland"), ("Copenhagen", "Denmark")]
CATALOG: dict[str, list[tuple[str, float]]] = {
    "Electronics": [("Wireless Mouse", 24.9), ("Mechanical Keyboard", 89.0), ("USB-C Hub", 39.5),
                    ("Noise Cancelling Headphones", 199.0), ("27-inch Monitor", 279.0), ("Webcam HD", 59.9),
                    ("Portable SSD 1TB", 119.0), ("Smart Speaker", 79.0)],
    "Books": [("The Pragmatic Programmer", 42.0), ("Designing Data-Intensive Applications", 48.5),
              ("SQL Cookbook", 35.0), ("Clean Code", 37.9), ("The Art of Statistics", 22.5),
              ("Deep Learning Basics", 55.0)],
    "Home": [("Coffee Grinder", 64.0), ("French Press", 29.9), ("Desk Lamp", 34.5), ("Ceramic Mug Set", 19.9),
             ("Cast Iron Pan", 45.0), ("Wool Blanket", 69.0), ("Plant Pot", 12.5)],
    "Sports": [("Yoga Mat", 27.0), ("Running Shoes", 110.0), ("Water Bottle", 15.9), ("Resistance Bands", 18.5),
               ("Cycling Helmet", 74.0), ("Tennis Racket", 129.0)],
    "Toys": [("Puzzle 1000 Pieces", 21.0), ("Building Blocks Set", 49.9), ("Board Game Classic", 32.0),
             ("Remote Control Car", 58.0), ("Plush Bear", 16.5)],
    "Garden": [("Garden Hose", 36.0), ("Pruning Shears", 24.0), ("Seed Starter Kit", 14.9),
               ("Watering Can", 19.0), ("Outdoor Chair", 89.0), ("Bird Feeder", 22.0)],
}
STATUSES = ["delivered"] * 6 + ["shipped"] * 2 + ["pending", "cancelled"]
N_CUSTOMERS = 60
N_ORDERS = 220
START = date(2023, 1, 1)


def _rows(rng: random.Random) -> dict[str, list[tuple]]:
    customers = []
    for cid in range(1, N_CUSTOMERS + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        city, country = rng.choice(PLACES)
        signup = START + timedelta(days=rng.randrange(0, 365))
        customers.append((cid, f"{first} {last}", f"{first.lower()}.{last.lower()}{cid}@example.com",
                          city, country, signup.isoformat()))
    products = []
    for category, items in CATALOG.items():
        for name, price in items:
            products.append((len(products) + 1, name, category, price, rng.randrange(0, 250)))
    orders, items = [], []
    # A few loyal customers order much more often: "top customers" questions have clear answers.
    weights = [8 if cid % 11 == 0 else 3 if cid % 4 == 0 else 1 for cid in range(1, N_CUSTOMERS + 1)]
    for oid in range(1, N_ORDERS + 1):
        cid = rng.choices(range(1, N_CUSTOMERS + 1), weights=weights)[0]
        signup = date.fromisoformat(customers[cid - 1][5])
        day = signup + timedelta(days=rng.randrange(0, 540))
        orders.append((oid, cid, day.isoformat(), rng.choice(STATUSES)))
        for product_id in rng.sample(range(1, len(products) + 1), rng.choice([1, 1, 2, 2, 3, 4])):
            price = products[product_id - 1][3]
            paid = round(price * rng.choice([1.0, 1.0, 1.0, 0.9, 0.8]), 2)  # occasional discount
            items.append((len(items) + 1, oid, product_id, rng.choice([1, 1, 1, 2, 2, 3, 5]), paid))
    return {"customers": customers, "products": products, "orders": orders, "order_items": items}


def _is_current(path: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0] == DEMO_VERSION
    except sqlite3.Error:
        return False


def build_demo_database(path: Path) -> Path:
    """Write the shop database to ``path`` (replaced atomically) and its descriptions next to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        conn = sqlite3.connect(tmp)
        try:
            conn.executescript(SCHEMA)
            for table, rows in _rows(random.Random(SEED)).items():
                marks = ",".join("?" * len(rows[0]))
                conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
            conn.execute(f"PRAGMA user_version = {DEMO_VERSION}")
            conn.commit()
        finally:
            conn.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    descriptions = path.with_name(f"{path.stem}.descriptions.json")
    descriptions.write_text(json.dumps(DESCRIPTIONS, indent=1), encoding="utf-8")
    return path


def ensure_demo_database(data_dir: Path) -> Path:
    """The path of the demo shop database under ``data_dir``, built first if missing or outdated."""
    path = Path(data_dir) / "text2sql" / "shop.sqlite"
    if not (path.is_file() and _is_current(path) and path.with_name("shop.descriptions.json").is_file()):
        build_demo_database(path)
    return path
