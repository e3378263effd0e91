-- v1 schema: contract tables (CONTRACT.md "Outputs") plus the store behind them.
-- Column names avoid DuckDB reserved words (`at` is reserved in DuckDB 2.0).

create table if not exists runs (
    run_id varchar primary key,
    flow_run_id varchar,
    as_of timestamptz not null,
    started_at timestamptz not null,
    finished_at timestamptz,
    status varchar not null,            -- running, succeeded, failed, blocked
    message varchar,
    summary json
);

create table if not exists ingested_files (
    sha256 varchar primary key,
    feed varchar not null,
    path varchar not null,
    rows_loaded bigint not null,
    rows_quarantined bigint not null,
    status varchar not null,            -- loaded, rejected, skipped
    reason varchar,
    run_id varchar not null,
    ingested_at timestamptz not null
);

create table if not exists quarantine (
    run_id varchar not null,
    feed varchar not null,
    file varchar not null,
    row_number bigint,
    raw varchar,
    reason varchar not null
);

create table if not exists customers (
    customer_id varchar primary key,
    email varchar not null,
    name varchar,
    tier varchar not null,
    locale varchar,
    email_opt_in boolean not null,
    updated_at timestamptz not null,
    source_sha256 varchar not null
);

create table if not exists products (
    sku varchar primary key,
    name varchar,
    status varchar not null,
    backorderable boolean not null,
    max_backorder_qty bigint,
    safety_stock bigint not null,
    lead_time_days bigint,
    substitute_skus varchar[],
    updated_at timestamptz not null,
    source_sha256 varchar not null
);

create table if not exists orders (
    order_id varchar primary key,
    customer_id varchar not null,
    placed_at timestamptz not null,
    status varchar not null,
    ship_complete boolean not null,
    priority bigint not null,
    currency varchar not null,
    updated_at timestamptz not null,
    source_sha256 varchar not null
);

create table if not exists order_lines (
    order_id varchar not null,
    line_no bigint not null,
    sku varchar not null,
    qty bigint not null,
    unit_price decimal(18, 2) not null,
    status varchar not null,
    updated_at timestamptz not null,
    source_sha256 varchar not null,
    primary key (order_id, line_no)
);

create table if not exists stock (
    location_id varchar not null,
    sku varchar not null,
    on_hand bigint not null,
    as_of timestamptz not null,
    source_sha256 varchar not null,
    primary key (location_id, sku)
);

-- every accepted count, for inventory accuracy (count against book stock)
create table if not exists stock_counts (
    location_id varchar not null,
    sku varchar not null,
    on_hand bigint not null,
    as_of timestamptz not null,
    source_sha256 varchar not null,
    run_id varchar not null
);

create table if not exists purchase_orders (
    po_id varchar not null,
    line_no bigint not null,
    supplier_id varchar not null,
    sku varchar not null,
    qty bigint not null,
    location_id varchar not null,
    expected_at date not null,
    status varchar not null,
    updated_at timestamptz not null,
    -- when the row first showed status `received` (the receipt time for book stock)
    received_at timestamptz,
    source_sha256 varchar not null,
    primary key (po_id, line_no)
);

create table if not exists supplier_updates (
    supplier_id varchar not null,
    po_id varchar not null,
    line_no bigint not null,
    expected_at date not null,
    qty_confirmed bigint,
    reason varchar,
    reported_at timestamptz not null,
    source_sha256 varchar not null,
    primary key (po_id, line_no, reported_at)
);

create table if not exists shipments (
    shipment_id varchar not null,
    order_id varchar not null,
    line_no bigint not null,
    sku varchar not null,
    qty bigint not null,
    location_id varchar not null,
    shipped_at timestamptz not null,
    source_sha256 varchar not null,
    primary key (shipment_id, order_id, line_no)
);

create table if not exists validation_results (
    run_id varchar not null,
    suite varchar not null,
    batch varchar not null,
    success boolean not null,
    evaluated bigint not null,
    failed bigint not null,
    details json
);

create table if not exists inventory_accuracy (
    run_id varchar not null,
    location_id varchar not null,
    sku varchar not null,
    prev_as_of timestamptz not null,
    as_of timestamptz not null,
    prev_count bigint not null,
    receipts bigint not null,
    shipped bigint not null,
    book bigint not null,
    counted bigint not null,
    accurate boolean not null
);

create table if not exists allocations (
    run_id varchar not null,
    order_id varchar not null,
    line_no bigint not null,
    sku varchar not null,
    supply_kind varchar not null,       -- stock, po
    supply_ref varchar not null,        -- location_id, or po_id:line_no
    qty bigint not null,
    promised_date date
    -- key (run_id, order_id, line_no, supply_ref): written only by one set-based
    -- statement per run; not an index, because maintaining an ART index costs more
    -- than the allocation itself at 10M lines (checked by expectations/mart_allocations)
);

create table if not exists line_status (
    order_id varchar not null,
    line_no bigint not null,
    customer_id varchar not null,
    sku varchar not null,
    qty_ordered bigint not null,
    qty_shipped bigint not null,
    qty_allocated bigint not null,
    qty_promised bigint not null,
    qty_unpromised bigint not null,
    promised_date date,
    status varchar not null,
    priority_rank bigint,
    reason varchar,
    run_id varchar not null
    -- key (order_id, line_no): replaced whole each run; checked by expectations/mart_line_status
);

create table if not exists promise_changes (
    run_id varchar not null,
    order_id varchar not null,
    line_no bigint not null,
    change varchar not null,            -- new, later, earlier, now_unpromised, now_allocated, status
    old_status varchar,
    new_status varchar not null,
    old_promised_date date,
    new_promised_date date
);

create table if not exists outbox (
    message_key varchar primary key,
    customer_id varchar not null,
    order_id varchar not null,
    kind varchar not null,
    status varchar not null,            -- pending, sending, sent, failed, suppressed
    attempts integer not null default 0,
    provider_message_id varchar,
    last_error varchar,
    created_at timestamptz not null,
    sent_at timestamptz,
    run_id varchar not null,
    to_email varchar not null,
    subject varchar not null,
    body_text varchar not null,
    body_html varchar not null,
    state json not null                 -- what the message told the customer
);

create table if not exists audit_log (
    seq bigint primary key,
    logged_at timestamptz not null,
    run_id varchar,
    event varchar not null,
    entity varchar not null,
    entity_id varchar not null,
    details json not null,
    prev_hash varchar not null,
    hash varchar not null
);
