-- allocations becomes a view over allocation_rows, with the same columns and meanings
-- (CONTRACT.md). A run's rows carry a small run number instead of the run id string,
-- and the supply kind is a one-byte ENUM: DuckDB 2.0, with DICT_FSST disabled (store.py),
-- stores strings uncompressed, and writing the same run id and 'stock'/'po' on each of
-- 7M rows took about 3 s of every 10M-line run (docs/performance.md, "Allocation").
-- (008 is left to the outbox's layout.)
create type supply_kind as enum ('stock', 'po');

create table allocation_runs (
    run_no integer not null,            -- 1, 2, ... in the order runs first allocated
    run_id varchar not null
    -- key run_no, and run_id unique: written only by allocation_store.allocate
);

create table allocation_rows (
    run_no integer not null,
    order_id varchar not null,
    line_no bigint not null,
    sku varchar not null,
    supply_kind supply_kind not null,
    supply_ref varchar not null,        -- location_id, or po_id:line_no
    qty bigint not null,
    promised_date date
    -- key (run_no, order_id, line_no, supply_ref): written by one set-based statement
    -- per run; checked by expectations/mart_allocations
);

insert into allocation_runs
select row_number() over (order by min(rowid))::integer, run_id
from allocations
group by run_id;

insert into allocation_rows
select r.run_no, a.order_id, a.line_no, a.sku, a.supply_kind::supply_kind, a.supply_ref, a.qty,
       a.promised_date
from allocations as a
join allocation_runs as r using (run_id);

drop table allocations;

create view allocations as
select r.run_id, a.order_id, a.line_no, a.sku, a.supply_kind::varchar as supply_kind,
       a.supply_ref, a.qty, a.promised_date
from allocation_rows as a
join allocation_runs as r using (run_no);
