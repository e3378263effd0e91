-- Where every open or recently closed line stands after this run's allocation,
-- written into {target}: line_results_next in a full run (swapped in for line_results
-- once compared with it), _results_new with the reallocated skus only in an
-- incremental one ({only_dirty}: allocation_store). line_status is a view of it that
-- writes each open line's reason from the facts stored here: migration 007.
insert into {target}
with got as (
    -- the lot that completes each line (the last it draws)
    select lid, available_on as last_supply_on, supply_ref as last_ref
    from _alloc
    where is_last
),
lines as (
    select l.lid as line_key, l.sid, l.order_key, l.qty_ordered, l.qty_shipped, l.qty_open,
           l.ship_complete, l.max_backorder_qty, l.backorderable, l.priority_rank,
           l.qty_allocated, l.qty_promised, l.refused, l.held, l.committed,
           g.last_supply_on, g.last_ref, l.lines_for_sku, l.usable_qty
    from _lines as l
    left join got as g using (lid)
),
ship_complete_orders as (
    -- a ship-complete order ships when its last line is covered: one date for all lines
    select order_key,
           case when bool_and(refused = 0 and qty_allocated + qty_promised >= qty_open)
                then max(last_supply_on) end as completes_on
    from lines
    where ship_complete
    group by order_key
),
covered as (
    select l.*,
           l.refused = 0 and l.qty_allocated + l.qty_promised >= l.qty_open as is_covered,
           case when l.ship_complete then s.completes_on else l.last_supply_on end as completes_on
    from lines as l
    left join ship_complete_orders as s using (order_key)
),
open_final as (
    select line_key, qty_ordered, qty_shipped, qty_allocated,
           qty_promised, qty_open - qty_allocated - qty_promised as qty_unpromised,
           case when is_covered or ship_complete then completes_on + $handling_days::integer end
               as promised_date,
           case when qty_allocated >= qty_open then 'allocated'
                when refused > 0 then 'not_backorderable'
                when qty_allocated + qty_promised >= qty_open then 'promised'
                when qty_allocated > 0 then 'partially_allocated'
                else 'unpromised' end as status,
           priority_rank, lines_for_sku, refused, usable_qty, max_backorder_qty,
           backorderable, ship_complete, held, committed, last_ref, last_supply_on,
           null as note, sid as sku_key
    from covered
),
shipped as (
    select order_id, line_no, sum(qty)::bigint as qty
    from shipments
    where shipped_at <= $as_of
    group by all
),
closed_lines as (
    -- the complement of the open lines, in two disjoint parts that never join every
    -- line with its order: lines closed or fully shipped themselves (a filter on the
    -- scan), and the still-open lines of the few closed orders (an inner join whose
    -- small side lets DuckDB skip the row groups of order_lines it cannot match)
    select ol.line_key, ol.order_key, ol.sku_key, ol.qty, ol.status, ol.updated_at,
           coalesce(sh.qty, 0) as qty_shipped
    from order_lines as ol
    left join shipped as sh using (order_id, line_no)
    where (ol.status <> 'open' or ol.qty <= coalesce(sh.qty, 0)) {only_dirty}
    union all
    select ol.line_key, ol.order_key, ol.sku_key, ol.qty, ol.status, ol.updated_at,
           coalesce(sh.qty, 0) as qty_shipped
    from (select order_key from orders where status <> 'open') as c
    join order_lines as ol using (order_key)
    left join shipped as sh using (order_id, line_no)
    where ol.status = 'open' and ol.qty > coalesce(sh.qty, 0) {only_dirty}
),
closed as (
    select ol.line_key, ol.qty as qty_ordered,
           ol.qty_shipped, 0 as qty_allocated, 0 as qty_promised,
           0 as qty_unpromised, null::date as promised_date,
           case when ol.status = 'cancelled' or o.status = 'cancelled' then 'cancelled'
                else 'shipped' end as status,
           null::bigint as priority_rank,
           null, null, null, null, null, null, null, null, null, null,
           case when ol.status = 'cancelled' or o.status = 'cancelled' then 'cancelled'
                else 'shipped' end || ' (line ' || ol.status || ', order ' || o.status || ')' as note,
           ol.sku_key
    from closed_lines as ol
    join orders as o on o.order_key = ol.order_key
    where greatest(ol.updated_at, o.updated_at) >= $as_of::timestamptz - interval 30 day
)
select * from open_final
union all
select * from closed
