-- Supply per sku, in the order it is drawn: usable stock by location (safety stock
-- held back from the last locations), then open PO lines by ETA with the latest
-- supplier update applied. Overdue POs and POs of non-backorderable skus are kept
-- for reporting but are not usable for promises. {head} and {only}: as in book_stock.sql.
{head}
with product as (
    select sku, safety_stock, status = 'active' and backorderable as backorderable
    from products
    where true {only}
),
stock_lots as (
    select b.sku, b.location_id as supply_ref, greatest(b.on_hand, 0) as on_hand,
           coalesce(sum(greatest(b.on_hand, 0)) over (
               partition by b.sku order by b.location_id
               rows between unbounded preceding and 1 preceding), 0) as before_qty,
           sum(greatest(b.on_hand, 0)) over (partition by b.sku) as total_qty,
           coalesce(p.safety_stock, 0) as safety_stock
    from book_stock as b
    left join product as p using (sku)
    where true {only_b}
),
stock_supply as (
    select sku, 'stock' as supply_kind, supply_ref,
           least(on_hand, greatest(0, greatest(0, total_qty - safety_stock) - before_qty)) as qty,
           on_hand as qty_before_safety,
           $as_of::date as available_on, true as usable, null::varchar as note
    from stock_lots
),
latest_update as (
    select po_id, line_no,
           arg_max(expected_at, reported_at) as expected_at,
           max(reported_at) as reported_at,
           arg_max(qty_confirmed, reported_at) filter (where qty_confirmed is not null) as qty_confirmed
    from supplier_updates
    group by all
),
po_supply as (
    select po.sku, 'po' as supply_kind, po.po_id || ':' || po.line_no as supply_ref,
           least(po.qty, coalesce(u.qty_confirmed, po.qty)) as qty,
           po.qty as qty_before_safety,
           case when u.reported_at > po.updated_at then u.expected_at else po.expected_at end
               as available_on,
           coalesce(p.backorderable, false) as backorderable
    from purchase_orders as po
    left join latest_update as u using (po_id, line_no)
    left join product as p on p.sku = po.sku
    where po.status = 'open' {only_po}
),
final as (
    select sku, supply_kind, supply_ref, qty, qty_before_safety, available_on, usable, note
    from stock_supply
    union all
    select sku, supply_kind, supply_ref, qty, qty_before_safety, available_on,
           available_on >= $as_of::date and backorderable as usable,
           case when available_on < $as_of::date
                    then 'overdue: ETA ' || available_on::varchar || ' passed without a receipt'
                when not backorderable then 'sku not backorderable: not promised' end as note
    from po_supply
)
select * from final
