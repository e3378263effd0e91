-- Where every open or recently closed line stands after this run's allocation.
create or replace temp table _line_status as
with got as (
    select order_id, line_no,
           sum(qty) filter (where supply_kind = 'stock') as qty_allocated,
           sum(qty) filter (where supply_kind = 'po') as qty_promised,
           max(available_on) as last_supply_on,
           -- the last lot it drew, for the reason; `backorders explain` lists them all
           arg_max(supply_ref, (available_on, supply_ref)) as last_ref,
           count(*) as n_lots
    from _alloc
    group by all
),
sku_facts as (
    select d.sku, count(*) as lines_for_sku,
           coalesce(any_value(s.usable_qty), 0) as usable_qty
    from demand_lines as d
    left join (select sku, sum(qty) filter (where usable) as usable_qty from supply_lots group by sku) as s
        using (sku)
    group by d.sku
),
lines as (
    select d.order_id, d.line_no, d.customer_id, d.sku, d.qty_ordered, d.qty_shipped, d.qty_open,
           d.ship_complete, d.max_backorder_qty, d.backorderable, d.priority_rank,
           coalesce(g.qty_allocated, 0) as qty_allocated,
           coalesce(g.qty_promised, 0) as qty_promised,
           a.refused,
           h.order_id is not null as held,
           g.last_supply_on, g.last_ref, g.n_lots, f.lines_for_sku, f.usable_qty
    from demand_lines as d
    join _accept as a using (order_id, line_no)
    join sku_facts as f on f.sku = d.sku
    left join got as g using (order_id, line_no)
    left join _held as h on h.order_id = d.order_id
),
ship_complete_orders as (
    -- a ship-complete order ships when its last line is covered: one date for all lines
    select order_id,
           case when bool_and(refused = 0 and qty_allocated + qty_promised >= qty_open)
                then max(last_supply_on) end as completes_on
    from lines
    where ship_complete
    group by order_id
),
covered as (
    select l.*,
           l.refused = 0 and l.qty_allocated + l.qty_promised >= l.qty_open as is_covered,
           case when l.ship_complete then s.completes_on else l.last_supply_on end as completes_on
    from lines as l
    left join ship_complete_orders as s using (order_id)
),
open_final as (
    select order_id, line_no, customer_id, sku, qty_ordered, qty_shipped, qty_allocated,
           qty_promised, qty_open - qty_allocated - qty_promised as qty_unpromised,
           case when is_covered or ship_complete then completes_on + $handling_days::integer end
               as promised_date,
           case when qty_allocated >= qty_open then 'allocated'
                when refused > 0 then 'not_backorderable'
                when qty_allocated + qty_promised >= qty_open then 'promised'
                when qty_allocated > 0 then 'partially_allocated'
                else 'unpromised' end as status,
           priority_rank,
           'rank ' || priority_rank || ' of ' || lines_for_sku || ' open lines for ' || sku || ': '
           || case when qty_allocated >= qty_open then 'all ' || qty_open || ' from stock (' || last_ref
                        || case when n_lots > 1 then ' and ' || (n_lots - 1) || ' more' else '' end || ')'
                   when refused > 0 and not backorderable
                        then 'product not backorderable (discontinued or blocked); '
                             || qty_allocated || ' of ' || qty_open || ' from stock'
                   when refused > 0
                        then refused || ' of ' || qty_open || ' units are beyond the product''s backorder limit of '
                             || max_backorder_qty || ' (lines ranked ahead use it): not accepted'
                   when is_covered then 'covered; completed by ' || last_ref
                        || ' arriving ' || last_supply_on::varchar
                   when usable_qty = 0 then qty_open - qty_allocated - qty_promised || ' of ' || qty_open
                        || ' units have no supply: no usable stock and no open PO on time for this sku'
                   else qty_open - qty_allocated - qty_promised || ' of ' || qty_open
                        || ' units have no supply yet (lines ranked ahead take the stock and open POs)' end
           || case when held then '; held: ship-complete order waits until all its lines are covered, '
                                  || 'its stock went to the next lines'
                   when ship_complete and completes_on is not null and qty_allocated < qty_open
                        then '; ship-complete: the order ships complete on its last line''s date'
                   else '' end as reason
    from covered
),
closed as (
    select ol.order_id, ol.line_no, o.customer_id, ol.sku, ol.qty as qty_ordered,
           coalesce(sh.qty, 0) as qty_shipped, 0 as qty_allocated, 0 as qty_promised,
           0 as qty_unpromised, null::date as promised_date,
           case when ol.status = 'cancelled' or o.status = 'cancelled' then 'cancelled'
                else 'shipped' end as status,
           null::bigint as priority_rank,
           case when ol.status = 'cancelled' or o.status = 'cancelled' then 'cancelled'
                else 'shipped' end || ' (line ' || ol.status || ', order ' || o.status || ')' as reason
    from order_lines as ol
    join orders as o using (order_id)
    left join (select order_id, line_no, sum(qty) as qty from shipments group by all) as sh
        using (order_id, line_no)
    anti join demand_lines as d using (order_id, line_no)
    where greatest(ol.updated_at, o.updated_at) >= $as_of::timestamptz - interval 30 day
      and (ol.status <> 'open' or o.status <> 'open' or ol.qty <= coalesce(sh.qty, 0))
)
select * from open_final
union all
select * from closed
