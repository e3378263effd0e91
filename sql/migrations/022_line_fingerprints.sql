-- Incremental allocation, cheaper to plan (docs/allocation.md, "Incremental runs"): the
-- order lines are fingerprinted per line, compared by buckets of 1,024 consecutive keys
-- first, instead of summed per sku (a 10M-line group by on every run). The next run is
-- full (no stored state): it stores the new fingerprints.
create table alloc_fp_line (
    line_key bigint,
    sku_key bigint,
    order_key bigint,
    fp ubigint not null
);

-- the sums of alloc_fp_line's fingerprints per bucket of keys (line_key >> 10)
create table alloc_fp_line_bucket (
    b bigint,
    s hugeint not null
);

-- each run's line and unit counts (the run summary's), so that an incremental run's
-- summary is the previous run's plus what it replaced, not a count of 10M lines
alter table allocation_runs add column summary_counts varchar;

delete from alloc_fp_sku where source = 'order_lines';
delete from alloc_state;
