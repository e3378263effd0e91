-- 030: replenishment advice (docs/replenishment.md).
--
-- products.pack_size          optional feed column: the units a supplier sells in one pack
--                             (a suggested order is rounded up to whole packs); null = single
--                             units. Old files without the column keep loading (null).
-- replenishment_advice        one row per sku and location per run: the demand and lead time
--                             measured, the safety stock and reorder point computed for the
--                             configured service level, the inventory position, the quantity
--                             to order (0 when the position covers the reorder point), the
--                             supplier to order from and why. Written by the replenish stage
--                             (backorders.adapters.replenish), read by `backorders replenish`.
--                             The advice of the latest replenish_keep_runs runs is kept.
--                             Strings that repeat (run_id, the reason text) are zstd-compressed:
--                             with DICT_FSST disabled (store.py) DuckDB would store them raw;
--                             128,800 rows took 56.6 MB raw, 8.7 MB so (docs/replenishment.md).
alter table products add column if not exists pack_size bigint;

create table if not exists replenishment_advice (
    run_id varchar using compression zstd not null,
    sku varchar not null,
    location_id varchar not null,
    window_days integer not null,          -- days of demand history used
    demand_units bigint not null,          -- units ordered in them (backordered and refused too)
    daily_demand double not null,
    demand_sd double not null,
    lead_time_days double,                 -- null: no lead time known
    lead_time_sd double not null,
    lead_time_source varchar not null,     -- supplier_sku, supplier, product, none
    lead_time_samples integer not null,    -- received PO lines measured
    supplier_id varchar,                   -- the supplier to order from (null: none known)
    on_time_rate double,                   -- its share of PO lines received by their first ETA
    service_level double not null,
    safety_stock double,
    reorder_point double,
    on_hand bigint not null,
    on_order bigint not null,
    committed bigint not null,
    backordered bigint not null,
    position bigint not null,              -- on_hand + on_order - committed - backordered
    suggested_qty bigint not null,         -- 0: no order needed
    pack_size bigint,
    configured_safety_stock bigint not null, -- products.safety_stock (the policy input)
    safety_stock_gap double,               -- configured minus computed safety stock
    reason varchar using compression zstd not null
    -- key (run_id, sku, location_id): written whole per run by one stage
);
