-- line_status becomes a view over line_results, the compact table each run writes.
-- Same columns, same meanings (CONTRACT.md); what changes is what is stored:
--  * the status is an ENUM (one byte) instead of a string;
--  * the run id is stored once (line_results_run), not on each of 10M rows;
--  * the reason is not stored for open lines: the view writes it from the facts it
--    is made of (the line's rank and the sku's line count, its refused units, the
--    sku's usable supply, the lot that completes it, the held/committed flags).
-- Why: writing line_status whole took 22 s of a 65 s allocation at 10M lines, most
-- of it building and storing the reason text (about 1.5 GB) that only `explain`,
-- `status` and a curious analyst read (docs/performance.md, "Allocation").
-- Closed lines, and rows from before this migration, keep their reason as stored
-- text in `note` (the facts of old rows are not known).
create type line_state as enum (
    'allocated', 'partially_allocated', 'promised', 'unpromised', 'not_backorderable',
    'shipped', 'cancelled'
);

create table line_results (
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
    status line_state not null,
    priority_rank bigint,
    -- the facts an open line's reason is written from (null for closed lines)
    lines_for_sku bigint,
    refused bigint,
    usable_qty bigint,
    max_backorder_qty bigint,
    backorderable boolean,
    ship_complete boolean,
    held boolean,
    is_committed boolean,
    last_ref varchar,
    last_supply_on date,
    -- the whole reason, stored: closed lines and rows from before migration 007
    note varchar
    -- key (order_id, line_no): replaced whole each run; checked by expectations/mart_line_status
);

create table line_results_run (run_id varchar not null);

insert into line_results
select order_id, line_no, customer_id, sku, qty_ordered, qty_shipped, qty_allocated,
       qty_promised, qty_unpromised, promised_date, status::line_state, priority_rank,
       null, null, null, null, null, null, null, null, null, null, reason
from line_status;
insert into line_results_run select run_id from line_status limit 1;
drop table line_status;

create view line_status as
select r.order_id, r.line_no, r.customer_id, r.sku, r.qty_ordered, r.qty_shipped,
       r.qty_allocated, r.qty_promised, r.qty_unpromised, r.promised_date,
       r.status::varchar as status, r.priority_rank,
       coalesce(
           r.note,
           'rank ' || r.priority_rank || ' of ' || r.lines_for_sku || ' open lines for ' || r.sku
           || ': '
           || case when r.status = 'allocated'
                       then 'all ' || (r.qty_ordered - r.qty_shipped)
                            || ' from stock, completed by ' || r.last_ref
                   when r.refused > 0 and not r.backorderable
                       then 'product not backorderable (discontinued or blocked); '
                            || r.qty_allocated || ' of ' || (r.qty_ordered - r.qty_shipped)
                            || ' from stock'
                   when r.refused > 0
                       then r.refused || ' of ' || (r.qty_ordered - r.qty_shipped)
                            || ' units are beyond the product''s backorder limit of '
                            || r.max_backorder_qty || ' (lines ranked ahead use it): not accepted'
                   when r.qty_unpromised = 0
                       then 'covered; completed by ' || r.last_ref || ' arriving '
                            || r.last_supply_on::varchar
                   when r.usable_qty = 0
                       then r.qty_unpromised || ' of ' || (r.qty_ordered - r.qty_shipped)
                            || ' units have no supply: no usable stock and no open PO on time '
                            || 'for this sku'
                   else r.qty_unpromised || ' of ' || (r.qty_ordered - r.qty_shipped)
                        || ' units have no supply yet (lines ranked ahead take the stock and '
                        || 'open POs)' end
           || case when r.held
                       then '; held: ship-complete order waits until all its lines are '
                            || 'covered, its stock went to the next lines'
                   when r.ship_complete and r.promised_date is not null and r.status <> 'allocated'
                       then '; ship-complete: the order ships complete on its last line''s date'
                   else '' end
           || case when r.is_committed
                       then '; committed: it held its stock in the last run, so it is served '
                            || 'before lines ranked ahead of it'
                   else '' end
       ) as reason,
       (select run_id from line_results_run) as run_id
from line_results as r;
