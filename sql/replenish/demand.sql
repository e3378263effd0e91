-- Demand per sku and location over the window: every order line placed in it, whatever
-- became of it (shipped, open, backordered, refused as not backorderable or beyond its
-- limit, cancelled): what customers ordered, not what shipped, so that a sku that was out
-- of stock does not look unpopular. A line counts at the location it shipped from, else
-- at its sku's home location (_rp_home). Per day the units are summed; the Python side
-- turns units and the sum of squares of the daily totals into mean and sd over $days days
-- (the days without an order count as zero).
create or replace temp table _rp_demand as
with lines as (
    select ol.order_id, ol.line_no, ol.sku, ol.qty,
           floor((epoch($as_of::timestamptz) - epoch(o.placed_at)) / 86400)::bigint as day_no
    from order_lines as ol
    join orders as o on o.order_key = ol.order_key
    where o.placed_at <= $as_of and o.placed_at > $since
),
shipped_from as (
    select s.order_id, s.line_no, arg_max(s.location_id, s.qty) as location_id
    from shipments as s
    semi join lines as l using (order_id, line_no)
    group by all
),
located as (
    select l.sku, coalesce(s.location_id, h.location_id) as location_id, l.day_no, l.qty
    from lines as l
    left join shipped_from as s using (order_id, line_no)
    join _rp_home as h using (sku)
),
by_day as (
    select sku, location_id, day_no, sum(qty) as units
    from located
    group by all
),
final as (
    select sku, location_id, sum(units)::bigint as demand_units,
           sum(units * units)::double as demand_sum_sq
    from by_day
    group by all
)
select * from final
