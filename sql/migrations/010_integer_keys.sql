-- Integer keys for the entities the allocation joins and sorts (docs/performance.md,
-- "Allocation"). Joining 10M order lines with 5M orders, sorting them per sku and
-- carrying their ids through every step cost about twice as much on string ids as on
-- integers, and rewriting the ids into line_results every run cost more still.
--
-- * Each entity gets its own key, assigned once and never changed: by the feeds'
--   MERGE when it first stores the row (the largest key so far plus the row's number
--   in its file: feed_rules.merge_sql), or, for a row inserted by hand, by
--   allocation_store.link_keys before the next allocation. Not a column default: a
--   sequence's nextval() takes a lock per row and made the 10M-line load single-threaded.
-- * The links (an order's customer, a line's order and sku) are looked up when the
--   feeds' MERGE writes the row (feed_rules.LINKS); allocation_store.link_keys fills any missing or
--   dangling (rows inserted, or deleted and inserted again, by hand).
-- * line_results, the table behind the line_status view, stores the line's key
--   instead of its order id, line number, customer id and sku: the view reads them
--   from order_lines and orders.
alter table customers add column customer_key bigint;
alter table products add column sku_key bigint;
alter table orders add column order_key bigint;
alter table orders add column customer_key bigint;
alter table order_lines add column line_key bigint;
alter table order_lines add column order_key bigint;
alter table order_lines add column sku_key bigint;

-- the rows stored so far: numbered as they lie in the table
update customers set customer_key = rowid + 1;
update products set sku_key = rowid + 1;
update orders set order_key = rowid + 1;
update order_lines set line_key = rowid + 1;

update orders set customer_key = c.customer_key
from customers as c
where c.customer_id = orders.customer_id;

update order_lines set order_key = o.order_key
from orders as o
where o.order_id = order_lines.order_id;

update order_lines set sku_key = p.sku_key
from products as p
where p.sku = order_lines.sku;

-- every stored line result must find its order line: stop rather than lose a row
select case when count(*) > 0
            then error('migration 010: ' || count(*) || ' line_results rows have no order line')
       end
from line_results as r
anti join order_lines as ol using (order_id, line_no);

create table line_results_keyed (
    line_key bigint not null,
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
    -- key line_key: replaced whole each run; checked by expectations/mart_line_status
);

insert into line_results_keyed
select ol.line_key, r.qty_ordered, r.qty_shipped, r.qty_allocated, r.qty_promised,
       r.qty_unpromised, r.promised_date, r.status, r.priority_rank, r.lines_for_sku,
       r.refused, r.usable_qty, r.max_backorder_qty, r.backorderable, r.ship_complete,
       r.held, r.is_committed, r.last_ref, r.last_supply_on, r.note
from line_results as r
join order_lines as ol using (order_id, line_no);

drop view line_status;
drop table line_results;
alter table line_results_keyed rename to line_results;

create view line_status as
select ol.order_id, ol.line_no, o.customer_id, ol.sku, r.qty_ordered, r.qty_shipped,
       r.qty_allocated, r.qty_promised, r.qty_unpromised, r.promised_date,
       r.status::varchar as status, r.priority_rank,
       coalesce(
           r.note,
           'rank ' || r.priority_rank || ' of ' || r.lines_for_sku || ' open lines for ' || ol.sku
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
from line_results as r
join order_lines as ol using (line_key)
join orders as o on o.order_key = ol.order_key;
