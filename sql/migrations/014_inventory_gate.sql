-- 014: the inventory accuracy gate judges the stock basis, not the files of one run
-- (docs/operations.md, "Inventory accuracy gate").
--
-- inventory_accuracy        now one row per count judged (location_id, sku, as_of); run_id
--                           is the run that judged it. A count not judged yet (its run
--                           stopped before or during validation) is judged by the next run.
-- inventory_gate            one decision per validation: open, closed, or overridden
-- inventory_gate_overrides  a person's audited acceptance of a closed gate (backorders
--                           accept-inventory), used once by the next validation

create table if not exists inventory_gate (
    run_id varchar not null,
    decided_at timestamptz not null,
    state varchar not null,             -- open, closed, overridden
    accuracy double,                    -- null: no judged count in the stock basis
    judged_items bigint not null,
    inaccurate_items bigint not null,
    min_accuracy double not null,
    basis_digest varchar not null,      -- which counts were inaccurate (an override names it)
    override_id bigint,
    message varchar
);

create table if not exists inventory_gate_overrides (
    override_id bigint not null,
    recorded_at timestamptz not null,
    by_name varchar not null,
    reason varchar not null,
    closed_run_id varchar not null,     -- the closed decision it accepts
    basis_digest varchar not null,
    inaccurate_items bigint not null,
    used_by_run varchar,                -- the validation that used it (null: not yet)
    used_at timestamptz,
    outcome varchar                     -- applied, not_needed, stale
);
