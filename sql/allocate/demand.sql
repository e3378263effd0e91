-- Open order lines (open order, open line, not fully shipped) with the facts the
-- priority key reads, ranked per sku in ONE sort that also yields the running sums
-- every later step needs (the order of service is committed lines first, then
-- rank: two filtered running sums place each line on it without a second sort).
-- {order_by} comes from backorders.domain.priority.order_by_sql (a fixed
-- whitelist), never from input. {order_value} is the order-value join, left out
-- when the key does not read it (it costs a 10M-row aggregate and join).
-- Everything joins and sorts on integer keys (migration 010); only the tie-break
-- reads the order id. {sku_key} is the line's sku key, or, when some line's sku has
-- no product row ({unlinked_join}), a negative key numbered for this run.
-- {only_dirty} and {only_dirty_results} limit an incremental run to the skus in _dirty
-- (allocation_plan).
create or replace temp table _demand as
with shipped as (
    -- up to the run's as_of, like book stock: a backfilled run sees the past as it was
    -- bigint, not the hugeint sum() gives: every later step computes on these
    select order_id, line_no, sum(qty)::bigint as qty
    from shipments
    where shipped_at <= $as_of
    group by all
),
shipped_lines as (
    select ol.line_key, s.qty
    from shipped as s
    join order_lines as ol using (order_id, line_no)
),
committed_lines as (
    -- held stock in the last run (fully allocated, released for picking)
    select line_key
    from line_results
    where $keep_committed and status = 'allocated' {only_dirty_results}
),
open_lines as (
    select ol.line_key, ol.order_key, {sku_key} as sku_key,
           ol.qty as qty_ordered,
           coalesce(s.qty, 0) as qty_shipped,
           ol.qty - coalesce(s.qty, 0) as qty_open,
           o.priority as order_priority,
           coalesce(list_position($tiers, c.tier), len($tiers) + 1) as tier_rank,
           o.placed_at,
           {order_value_col} as order_value,
           o.order_id, ol.line_no,
           o.ship_complete,
           k.line_key is not null as committed
    from order_lines as ol
    join orders as o on o.order_key = ol.order_key
    left join customers as c on c.customer_key = o.customer_key
    left join shipped_lines as s on s.line_key = ol.line_key
    left join committed_lines as k on k.line_key = ol.line_key
    {unlinked_join}
    {order_value_join}
    where o.status = 'open' and ol.status = 'open' and ol.qty - coalesce(s.qty, 0) > 0
      {only_dirty}
)
-- Only what allocation needs leaves the window: every column carried through the
-- sort costs time at 10M lines (the sort facts are recomputed by `explain`). What
-- belongs to the product (backorderable, backorder limit) is joined per sku in
-- sku_totals.sql, 200k rows instead of 10M.
select line_key, order_key, sku_key, qty_ordered, qty_shipped, qty_open,
       ship_complete, committed,
       row_number() over w as priority_rank,
       -- running sums up to and including this line, in rank order (the key is total,
       -- so the default frame has no peers)
       coalesce(sum(qty_open) filter (where committed) over w, 0)::bigint as committed_upto,
       coalesce(sum(qty_open) filter (where not committed) over w, 0)::bigint as others_upto
from open_lines
window w as (partition by sku_key order by {order_by})
