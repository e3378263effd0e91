-- Each sku's home location: where its demand without a location of its own (a line not
-- shipped yet: order lines carry no location) and its open backorders are counted. The
-- location that holds or moves the most of the sku (book stock on hand, PO units not
-- cancelled, units shipped in the window), ties to the first location id; a sku known at
-- no location goes to the first location the pipeline knows, or 'unassigned'.
create or replace temp table _rp_home as
with weights as (
    select sku, location_id, greatest(on_hand, 0)::bigint as units
    from book_stock
    union all
    select sku, location_id, qty
    from purchase_orders
    where status <> 'cancelled'
    union all
    select sku, location_id, qty
    from shipments
    where shipped_at > $since and shipped_at <= $as_of
),
by_location as (
    select sku, location_id, sum(units) as units
    from weights
    group by all
),
located as (
    select sku, first(location_id order by units desc, location_id) as location_id
    from by_location
    group by all
),
fallback as (
    select coalesce(min(location_id), 'unassigned') as location_id
    from by_location
),
final as (
    select p.sku, coalesce(l.location_id, f.location_id) as location_id
    from products as p
    left join located as l using (sku)
    cross join fallback as f
)
select * from final
