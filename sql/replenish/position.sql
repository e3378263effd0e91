-- The inventory position per sku and location, as of the run's allocation: book stock on
-- hand, plus open PO units arriving there (the supplier's latest confirmed quantity when it
-- cut one), minus the stock committed to open lines there (this allocation's stock rows),
-- minus the open backorders (units of open lines not from stock, counted at the sku's home
-- location; units refused as not backorderable are not owed and not counted). One row per
-- sku and location where any of these, or the window's demand, is known.
create or replace temp table _rp_position as
with on_hand as (
    select sku, location_id, greatest(on_hand, 0)::bigint as on_hand
    from book_stock
),
latest_update as (
    select po_id, line_no,
           arg_max(qty_confirmed, reported_at) filter (where qty_confirmed is not null)
               as qty_confirmed
    from supplier_updates
    group by all
),
on_order as (
    select po.sku, po.location_id,
           sum(least(po.qty, coalesce(u.qty_confirmed, po.qty)))::bigint as on_order
    from purchase_orders as po
    left join latest_update as u using (po_id, line_no)
    where po.status = 'open'
    group by all
),
committed as (
    select a.sku, a.supply_ref as location_id, sum(a.qty)::bigint as committed
    from allocations as a
    where a.run_id = (select run_id from line_results_run) and a.supply_kind = 'stock'
    group by all
),
backordered as (
    select ol.sku, h.location_id, sum(lr.qty_promised + lr.qty_unpromised)::bigint as backordered
    from line_results as lr
    join order_lines as ol using (line_key)
    join _rp_home as h on h.sku = ol.sku
    where lr.status in ('partially_allocated', 'promised', 'unpromised')
    group by all
),
keyed as (
    select sku, location_id from on_hand
    union
    select sku, location_id from on_order
    union
    select sku, location_id from committed
    union
    select sku, location_id from backordered
    union
    select sku, location_id from _rp_demand
),
final as (
    select k.sku, k.location_id,
           coalesce(h.on_hand, 0) as on_hand,
           coalesce(o.on_order, 0) as on_order,
           coalesce(c.committed, 0) as committed,
           coalesce(b.backordered, 0) as backordered
    from keyed as k
    semi join products as p on p.sku = k.sku
    left join on_hand as h using (sku, location_id)
    left join on_order as o using (sku, location_id)
    left join committed as c using (sku, location_id)
    left join backordered as b using (sku, location_id)
)
select * from final
