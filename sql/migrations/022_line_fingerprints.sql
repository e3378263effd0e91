-- Incremental allocation, cheaper to plan (docs/allocation.md, "Incremental runs"): the
-- order lines are fingerprinted per line and, like the orders, compared by buckets of 1,024 consecutive keys
-- first, instead of summed per sku (a 10M-line group by on every run). The next run is
-- full (no stored state): it stores the new fingerprints.
create table alloc_fp_line (
    line_key bigint,
    sku_key bigint,
    order_key bigint,
    fp ubigint not null
);

-- the sums of the stored fingerprints per bucket of keys (key >> 10): compared with the
-- tables' in one pass, before any row is
create table alloc_fp_line_bucket (
    b bigint,
    s hugeint not null
);
create table alloc_fp_order_bucket (
    b bigint,
    s hugeint not null
);
create table alloc_fp_customer_bucket (
    b bigint,
    s hugeint not null
);

-- each run's line and unit counts (the run summary's), so that an incremental run's
-- summary is the previous run's plus what it replaced, not a count of 10M lines
alter table allocation_runs add column summary_counts varchar;

delete from alloc_fp_sku where source = 'order_lines';
delete from alloc_state;
