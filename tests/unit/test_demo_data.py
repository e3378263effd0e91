"""The demo-data generator: determinism, contract shape, realistic data, planted bad input."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backorders.devtools.demo_data import DemoManifest, DemoSpec, generate

AS_OF = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)

# Written out from CONTRACT.md on purpose, not imported from the module under test.
CONTRACT: dict[str, list[str]] = {
    "customers": [
        "customer_id", "email", "name", "tier", "locale", "email_opt_in", "updated_at",
    ],
    "products": [
        "sku", "name", "status", "backorderable", "max_backorder_qty", "safety_stock",
        "lead_time_days", "substitute_skus", "updated_at",
    ],
    "orders": [
        "order_id", "customer_id", "placed_at", "status", "ship_complete", "priority",
        "currency", "updated_at",
        # optional columns beyond v1 (docs/feeds.md, docs/payments.md)
        "payment_provider", "payment_ref", "payment_amount", "payment_currency",
        "payment_expires_at",
    ],
    "order_lines": ["order_id", "line_no", "sku", "qty", "unit_price", "status", "updated_at"],
    "stock": ["location_id", "sku", "on_hand", "as_of"],
    "purchase_orders": [
        "po_id", "line_no", "supplier_id", "sku", "qty", "location_id", "expected_at",
        "status", "updated_at",
    ],
    "supplier_updates": [
        "supplier_id", "po_id", "line_no", "expected_at", "qty_confirmed", "reason",
        "reported_at",
    ],
    "shipments": [
        "shipment_id", "order_id", "line_no", "sku", "qty", "location_id", "shipped_at",
    ],
}  # fmt: skip
TIERS = {"platinum", "gold", "silver", "standard"}


def _records(path: Path) -> list[dict[str, Any]]:
    """Rows of one file as dicts of Python values (CSV values stay text)."""
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return pl.read_parquet(path).to_dicts()


class Landing:
    """The generated landing zone, read back into plain Python for assertions."""

    def __init__(self, root: Path, manifest: DemoManifest) -> None:
        self.root = root
        self.manifest = manifest
        self.files: dict[str, list[Path]] = {}
        for path in manifest.files:
            if path not in manifest.bad_files:
                self.files.setdefault(path.parent.name, []).append(path)
        self.rows = {
            feed: [r for p in paths for r in _records(p)] for feed, paths in self.files.items()
        }

    def by_file(self, feed: str) -> dict[Path, list[dict[str, Any]]]:
        """Rows of each usable file of a feed."""
        return {p: _records(p) for p in self.files[feed]}


def _ts(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _bad_rows(landing: Landing) -> dict[str, list[tuple[str, Any]]]:
    """Find every row that breaks the contract, feed by feed, without help from the generator."""
    skus = {r["sku"] for r in landing.rows["products"]}
    bad: dict[str, list[tuple[str, Any]]] = {feed: [] for feed in CONTRACT}
    for r in landing.rows["customers"]:
        if r["tier"] not in TIERS:
            bad["customers"].append(("tier", r["customer_id"]))
    for r in landing.rows["orders"]:
        if _ts(r["placed_at"]) is None:
            bad["orders"].append(("placed_at", r["order_id"]))
    for path, rows in landing.by_file("order_lines").items():
        seen: set[tuple[str, int]] = set()
        for r in rows:
            key = (r["order_id"], int(r["line_no"]))
            if key in seen:
                bad["order_lines"].append(("duplicate key", (path.name, key)))
            seen.add(key)
            if int(r["qty"]) <= 0:
                bad["order_lines"].append(("qty", (path.name, key)))
            if r["sku"] not in skus:
                bad["order_lines"].append(("unknown sku", (path.name, key)))
    for r in landing.rows["purchase_orders"]:
        if _day(r["expected_at"]) > AS_OF.date() + timedelta(days=5 * 365):
            bad["purchase_orders"].append(("expected_at", (r["po_id"], r["line_no"])))
    return bad


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Landing:
    root = tmp_path_factory.mktemp("landing")
    return Landing(root, generate(root))


def _good(landing: Landing) -> dict[str, list[dict[str, Any]]]:
    """Rows minus the planted bad ones (and minus both copies of a duplicated key)."""
    bad = _bad_rows(landing)
    bad_customers = {k for _, k in bad["customers"]}
    bad_orders = {k for _, k in bad["orders"]}
    bad_lines = {k[1] for _, k in bad["order_lines"]}
    bad_pos = {k for _, k in bad["purchase_orders"]}
    good = dict(landing.rows)
    good["customers"] = [r for r in good["customers"] if r["customer_id"] not in bad_customers]
    good["orders"] = [r for r in good["orders"] if r["order_id"] not in bad_orders]
    good["order_lines"] = [
        r for r in good["order_lines"] if (r["order_id"], int(r["line_no"])) not in bad_lines
    ]
    good["purchase_orders"] = [
        r for r in good["purchase_orders"] if (r["po_id"], r["line_no"]) not in bad_pos
    ]
    return good


@pytest.mark.unit
def test_same_spec_writes_byte_identical_files(tmp_path: Path) -> None:
    first = generate(tmp_path / "a")
    second = generate(tmp_path / "b")

    def digests(root: Path, files: list[Path]) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    assert digests(tmp_path / "a", first.files) == digests(tmp_path / "b", second.files)
    assert first.rows == second.rows and first.bad_rows == second.bad_rows


@pytest.mark.unit
def test_another_seed_writes_other_data(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", DemoSpec(seed=1))
    b = generate(tmp_path / "b", DemoSpec(seed=2))

    assert a.files[0].read_bytes() != b.files[0].read_bytes()


@pytest.mark.unit
def test_naive_as_of_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        DemoSpec(as_of=datetime(2026, 11, 23, 6, 0))


@pytest.mark.unit
def test_every_feed_has_a_file_and_all_three_formats_are_used(landing: Landing) -> None:
    assert set(landing.files) == set(CONTRACT)
    suffixes = {p.suffix for p in landing.manifest.files}
    assert suffixes == {".csv", ".jsonl", ".parquet"}
    assert landing.manifest.files == sorted(landing.manifest.files)
    assert all(p.is_file() and p.parent.parent == landing.root for p in landing.manifest.files)


@pytest.mark.unit
def test_columns_are_exactly_the_contract_columns_in_every_format(landing: Landing) -> None:
    for feed, paths in landing.files.items():
        for path in paths:
            if path.suffix == ".csv":
                header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
                assert header == CONTRACT[feed], path
            elif path.suffix == ".parquet":
                assert pq.read_schema(path).names == CONTRACT[feed], path
            else:
                keys = {tuple(json.loads(line)) for line in path.read_text("utf-8").splitlines()}
                assert keys == {tuple(CONTRACT[feed])}, path


@pytest.mark.unit
def test_parquet_uses_natural_arrow_types(landing: Landing) -> None:
    lines = pq.read_schema(landing.files["order_lines"][0])
    pos = pq.read_schema(landing.files["purchase_orders"][0])

    assert lines.field("unit_price").type == pa.decimal128(12, 2)
    assert lines.field("updated_at").type == pa.timestamp("us", tz="UTC")
    assert lines.field("qty").type == pa.int64()
    assert pos.field("expected_at").type == pa.date32()


@pytest.mark.unit
def test_csv_and_jsonl_values_use_the_contract_text_forms(landing: Landing) -> None:
    customer = landing.rows["customers"][0]
    product_rows = landing.rows["products"]
    order = landing.rows["orders"][0]

    assert customer["updated_at"].endswith("Z") and _ts(customer["updated_at"]) is not None
    assert customer["email_opt_in"] in {"true", "false"}
    assert any(";" in r["substitute_skus"] for r in product_rows)
    assert any(r["max_backorder_qty"] == "" for r in product_rows)
    assert isinstance(order["ship_complete"], bool) and order["placed_at"].endswith("Z")
    assert any(r["qty_confirmed"] is None for r in landing.rows["supplier_updates"])


@pytest.mark.unit
def test_manifest_row_counts_match_the_files(landing: Landing) -> None:
    counted = {feed: len(rows) for feed, rows in landing.rows.items()}

    assert landing.manifest.rows == counted
    assert 1400 <= counted["orders"] <= 1600 and 2500 <= counted["order_lines"] <= 3500
    assert 400 <= counted["customers"] <= 402 and counted["products"] == 120


@pytest.mark.unit
@pytest.mark.parametrize("seed", [7, 1, 42])
def test_planted_bad_rows_are_exactly_the_ones_counted(tmp_path: Path, seed: int) -> None:
    manifest = generate(tmp_path, DemoSpec(seed=seed))
    bad = _bad_rows(Landing(tmp_path, manifest))

    assert manifest.bad_rows == {feed: len(rows) for feed, rows in bad.items()}
    assert {why for why, _ in bad["order_lines"]} == {"duplicate key", "qty", "unknown sku"}
    assert sum(manifest.bad_rows.values()) == 7


@pytest.mark.unit
def test_the_one_bad_file_is_a_stock_export_without_on_hand(landing: Landing) -> None:
    (bad_file,) = landing.manifest.bad_files
    header = bad_file.read_text(encoding="utf-8").splitlines()[0].split(",")

    assert bad_file.parent.name == "stock"
    assert "on_hand" not in header and set(header) < set(CONTRACT["stock"])
    assert len(bad_file.read_text(encoding="utf-8").splitlines()) > 1


@pytest.mark.unit
@pytest.mark.parametrize("seed", [7, 1, 42])
def test_good_rows_reference_each_other(tmp_path: Path, seed: int) -> None:
    good = _good(Landing(tmp_path, generate(tmp_path, DemoSpec(seed=seed))))
    customers = {r["customer_id"] for r in good["customers"]}
    skus = {r["sku"] for r in good["products"]}
    orders = {r["order_id"]: r for r in good["orders"]}
    lines = {(r["order_id"], int(r["line_no"])): r for r in good["order_lines"]}
    po_lines = {(r["po_id"], r["line_no"]): r for r in good["purchase_orders"]}

    assert all(o["customer_id"] in customers for o in orders.values())
    assert all(r["order_id"] in orders and r["sku"] in skus for r in lines.values())
    assert all(r["sku"] in skus for r in po_lines.values())
    for u in good["supplier_updates"]:
        assert po_lines[(u["po_id"], u["line_no"])]["supplier_id"] == u["supplier_id"]
    for p in good["products"]:
        assert all(s in skus and s != p["sku"] for s in p["substitute_skus"].split(";") if s)
    shipped = {k for k, r in lines.items() if r["status"] == "shipped"}
    shipment_keys = set()
    for s in good["shipments"]:
        key = (s["order_id"], int(s["line_no"]))
        assert key in shipped
        assert (s["sku"], int(s["qty"])) == (lines[key]["sku"], int(lines[key]["qty"]))
        shipment_keys.add(key)
    assert shipment_keys == shipped


@pytest.mark.unit
def test_line_statuses_agree_with_their_order(landing: Landing) -> None:
    good = _good(landing)
    by_order: dict[str, set[str]] = {}
    for r in good["order_lines"]:
        by_order.setdefault(r["order_id"], set()).add(r["status"])

    for o in good["orders"]:
        statuses = by_order.get(o["order_id"], set())
        if o["status"] == "completed":
            assert statuses == {"shipped"}
        elif o["status"] == "cancelled":
            assert statuses == {"cancelled"}
        elif statuses:
            assert "open" in statuses


@pytest.mark.unit
def test_every_timestamp_is_before_as_of(landing: Landing) -> None:
    columns = ("updated_at", "placed_at", "as_of", "reported_at", "shipped_at")
    stamps = [
        _ts(r[c]) for rows in _good(landing).values() for r in rows for c in columns if c in r
    ]
    assert stamps and all(t is not None and t < AS_OF for t in stamps)
    stock_as_of = {r["as_of"] for r in landing.rows["stock"]}
    # an earlier full count (30 h before) and the recent one (2 h before)
    assert stock_as_of == {"2026-11-22T00:00:00Z", "2026-11-23T04:00:00Z"}
    shipped = [_ts(r["shipped_at"]) for r in landing.rows["shipments"]]
    assert all(
        t is not None and AS_OF - timedelta(days=5) <= t <= AS_OF - timedelta(days=2)
        for t in shipped
    )


@pytest.mark.unit
def test_customers_have_realistic_tiers_locales_and_a_few_unmailable(landing: Landing) -> None:
    customers = _good(landing)["customers"]
    tiers = Counter(r["tier"] for r in customers)
    share = {t: n / len(customers) for t, n in tiers.items()}

    assert share["platinum"] == pytest.approx(0.05, abs=0.02)
    assert share["standard"] == pytest.approx(0.50, abs=0.03)
    assert {r["locale"] for r in customers} == {"en-US", "en-GB", "de-DE", "fr-FR"}
    assert 1 <= sum("@" not in r["email"] for r in customers) <= 0.02 * len(customers)
    assert 1 <= sum(r["email_opt_in"] == "false" for r in customers) <= 0.1 * len(customers)


@pytest.mark.unit
def test_sku_popularity_is_skewed(landing: Landing) -> None:
    per_sku = Counter(r["sku"] for r in _good(landing)["order_lines"])
    top = sorted(per_sku.values(), reverse=True)[: len(landing.rows["products"]) // 10]

    assert sum(top) > 0.4 * sum(per_sku.values())


@pytest.mark.unit
def test_stock_is_short_of_open_demand_for_many_skus(landing: Landing) -> None:
    good = _good(landing)
    frame = pl.DataFrame(
        {
            "order_id": [r["order_id"] for r in good["order_lines"]],
            "sku": [r["sku"] for r in good["order_lines"]],
            "qty": [int(r["qty"]) for r in good["order_lines"]],
            "status": [r["status"] for r in good["order_lines"]],
        }
    )
    open_orders = [r["order_id"] for r in good["orders"] if r["status"] == "open"]
    demand = (
        frame.filter(pl.col("status") == "open", pl.col("order_id").is_in(open_orders))
        .group_by("sku")
        .agg(pl.col("qty").sum().alias("demand"))
    )
    latest = [r for r in good["stock"] if r["as_of"] == "2026-11-23T04:00:00Z"]
    stock = (
        pl.DataFrame(latest)
        .with_columns(pl.col("on_hand").cast(pl.Int64))
        .group_by("sku")
        .agg(pl.col("on_hand").sum())
    )
    joined = demand.join(stock, on="sku", how="left").fill_null(0)
    short = joined.filter(pl.col("on_hand") < pl.col("demand"))

    assert short.height > 0.4 * joined.height
    assert stock.filter(pl.col("on_hand") == 0).height > 0.2 * stock.height
    locations_per_sku = Counter(r["sku"] for r in latest)
    assert set(locations_per_sku.values()) == {1, 2}


@pytest.mark.unit
def test_products_mix_discontinued_unbackorderable_capped_and_substitutes(
    landing: Landing,
) -> None:
    products = landing.rows["products"]
    discontinued = [p for p in products if p["status"] == "discontinued"]

    assert 3 <= len(discontinued) <= 8
    assert all(p["backorderable"] == "false" for p in discontinued)
    assert any(p["status"] == "active" and p["backorderable"] == "false" for p in products)
    assert any(p["max_backorder_qty"] for p in products)
    assert {int(p["safety_stock"]) for p in products} <= {0, 1, 2, 3}
    assert all(7 <= int(p["lead_time_days"]) <= 45 for p in products)


@pytest.mark.unit
def test_there_are_overdue_received_and_cancelled_pos(landing: Landing) -> None:
    pos = _good(landing)["purchase_orders"]
    today = AS_OF.date()
    overdue = {r["po_id"] for r in pos if r["status"] == "open" and r["expected_at"] < today}
    statuses = Counter(r["status"] for r in pos)

    assert len(overdue) >= 2
    assert statuses["received"] >= 1 and statuses["cancelled"] >= 1
    future = [r["expected_at"] - today for r in pos if r["expected_at"] >= today]
    assert all(timedelta(days=3) <= d <= timedelta(days=40) for d in future)
    assert max(Counter(r["sku"] for r in pos).values()) >= 2


@pytest.mark.unit
def test_supplier_updates_delay_some_lines_and_confirm_less_for_others(landing: Landing) -> None:
    good = _good(landing)
    po_lines = {(r["po_id"], r["line_no"]): r for r in good["purchase_orders"]}
    updates = good["supplier_updates"]
    delayed = [
        u
        for u in updates
        if _day(u["expected_at"]) > po_lines[(u["po_id"], u["line_no"])]["expected_at"]
    ]
    short = [
        u
        for u in updates
        if u["qty_confirmed"] is not None
        and u["qty_confirmed"] < po_lines[(u["po_id"], u["line_no"])]["qty"]
    ]

    assert len(delayed) >= 2 and len(short) >= 1
    assert all(po_lines[(u["po_id"], u["line_no"])]["status"] == "open" for u in updates)


@pytest.mark.unit
def test_scale_grows_the_data_linearly(tmp_path: Path) -> None:
    manifest = generate(tmp_path, DemoSpec(scale=2))

    assert manifest.rows["customers"] == 801 and manifest.rows["products"] == 240
    assert manifest.rows["orders"] == 3001


@pytest.mark.unit
def test_manifest_lists_the_orders_authorizations_mostly_valid_at_as_of(landing: Landing) -> None:
    """What the demo's local Stripe server holds: the orders feed's, some lapsed by the as-of."""
    in_feed = {
        (r["payment_ref"], int(r["payment_amount"]), r["payment_currency"])
        for r in landing.rows["orders"]
        if r.get("payment_ref")
    }
    listed = landing.manifest.authorizations
    assert {(ref, amount, cur) for ref, amount, cur, _ in listed} == in_feed
    now = AS_OF.timestamp()
    lapsed = [a for a in listed if a[3] <= now]
    assert lapsed and len(lapsed) < len(listed) / 4
