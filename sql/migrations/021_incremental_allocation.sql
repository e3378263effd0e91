-- Incremental allocation (docs/allocation.md, "Incremental runs"): a run reallocates
-- only the skus whose inputs changed since the last committed run. What that needs:
--
-- * line_results stores each line's sku key, so a run can replace the rows of the skus
--   it reallocates and keep the others.
-- * allocation_rows become validity intervals: a row is written by run run_no and
--   stays part of every later run's allocations until run run_to replaced its sku
--   (null: still current). A run sees the rows written from its epoch's base run on
--   (allocation_runs.base_run_no: the last full run at or before it), so a full run
--   writes every row afresh without touching the old ones, and an incremental run
--   writes the rows of its skus only. The allocations view reads the same rows as
--   before: each run's complete allocation.
-- * allocation_runs keeps each run's allocation-row digest parts (count and two hash
--   sums), so the audited decisions digest of an incremental run is the previous run's
--   minus the replaced rows plus the new ones, not a pass over millions of rows.
-- * The fingerprints of the inputs per sku and per order as of the last run
--   (alloc_fp_sku, alloc_fp_order, alloc_fp_customer), and the run's scalar facts (alloc_state).
alter table line_results add column sku_key bigint;
update line_results set sku_key = ol.sku_key
from order_lines as ol
where ol.line_key = line_results.line_key;

alter table allocation_rows add column run_to integer;
alter table allocation_runs add column base_run_no integer;
alter table allocation_runs add column alloc_n bigint;
alter table allocation_runs add column alloc_h1 hugeint;
alter table allocation_runs add column alloc_h2 hugeint;
-- every run so far wrote all its rows: each is its own base
update allocation_runs set base_run_no = run_no;

create or replace view allocations as
select r.run_id, a.order_id, a.line_no, a.sku, a.supply_kind::varchar as supply_kind,
       a.supply_ref, a.qty, a.promised_date
from allocation_rows as a
join allocation_runs as r
    on a.run_no >= coalesce(r.base_run_no, r.run_no) and a.run_no <= r.run_no
   and (a.run_to is null or a.run_to > r.run_no);

-- one fingerprint (a sum of 64-bit row hashes) per input source and sku key
-- (supply-side sources: per sku id, sku_key null), as of the last committed run
create table alloc_fp_sku (
    source varchar not null,
    sku varchar,
    sku_key bigint,
    fp hugeint not null
);

-- per order: the fingerprint of the order facts the priority reads, and its value
create table alloc_fp_order (
    order_key bigint not null,
    fp ubigint not null,
    order_value decimal(38, 2)
);

-- per customer: the fingerprint of what the priority reads of it (its tier)
create table alloc_fp_customer (
    customer_key bigint not null,
    fp ubigint not null
);

-- the skus reconcile rewrote since the last allocation (their supply lots changed),
-- and the skus whose committed lines changed in the last run (keep_committed)
create table alloc_dirty (
    reason varchar not null,
    sku varchar,
    sku_key bigint
);

-- the last committed run's facts the fingerprints depend on (as_of, settings digest)
create table alloc_state (
    name varchar not null,
    value varchar
);
