-- Where every open or recently closed line stands after this run's allocation.
create or replace temp table _line_status as
with got as (
    select order_id, line_no,
           sum(qty) filter (where supply_kind = 'stock') as qty_allocated,
           sum(qty) filter (where supply_kind = 'po') as qty_promised,
           max(available_on) as last_supply_on,
           string_agg(supply_ref || ' x' || qty, ', ' order by available_on, supply_ref) as refs
    from _alloc
    group by all
),
sku_rank as (
    select sku, count(*) as lines_for_sku from demand_lines group by all
),
open_status as (
    select d.order_id, d.line_no, d.customer_id, d.sku, d.qty_ordered, d.qty_shipped,
           coalesce(g.qty_allocated, 0) as qty_allocated,
           coalesce(g.qty_promised, 0) as qty_promised,
           d.qty_open - coalesce(g.qty_allocated, 0) - coalesce(g.qty_promised, 0) as qty_unpromised,
           d.qty_open, d.backorderable, d.priority_rank, r.lines_for_sku, g.last_supply_on, g.refs
    from demand_lines as d
    left join got as g using (order_id, line_no)
    join sku_rank as r using (sku)
),
open_final as (
    select order_id, line_no, customer_id, sku, qty_ordered, qty_shipped, qty_allocated,
           qty_promised, qty_unpromised,
           case when qty_unpromised = 0 then last_supply_on + $handling_days::integer end
               as promised_date,
           case when qty_allocated >= qty_open then 'allocated'
                when not backorderable then 'not_backorderable'
                when qty_unpromised = 0 then 'promised'
                when qty_allocated > 0 then 'partially_allocated'
                else 'unpromised' end as status,
           priority_rank,
           'rank ' || priority_rank || ' of ' || lines_for_sku || ' open lines for ' || sku || ': '
           || case when qty_allocated >= qty_open then 'all ' || qty_open || ' from stock (' || refs || ')'
                   when not backorderable then 'product not backorderable (discontinued or blocked); '
                        || qty_allocated || ' of ' || qty_open || ' from stock'
                   when qty_unpromised = 0 then 'covered by ' || refs || '; the last supply arrives '
                        || last_supply_on::varchar
                   else qty_unpromised || ' of ' || qty_open
                        || ' units have no supply yet (all stock and open POs go to lines ranked ahead)'
                        || coalesce('; got ' || refs, '') end as reason
    from open_status
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
