-- Book stock now, per location and sku: the last count, plus receipts since it,
-- minus shipments since it (up to the run's as_of). {head} creates the table (a full
-- reconcile) or inserts the rows of the skus in _supply_dirty ({only}: an incremental
-- one, allocation_store.reconcile).
{head}
with counts as (
    select location_id, sku, on_hand as counted, as_of as counted_at
    from stock
    where true {only}
),
received_po as (
    select location_id, sku, qty, received_at
    from purchase_orders
    where status = 'received' and received_at <= $as_of {only}
),
uncounted as (
    -- a location/sku never counted but with receipts: book stock starts at zero
    select distinct r.location_id, r.sku, 0::bigint as counted, null::timestamptz as counted_at
    from received_po as r
    anti join counts as c on c.location_id = r.location_id and c.sku = r.sku
),
all_counts as (
    select * from counts
    union all
    select * from uncounted
),
receipts as (
    select c.location_id, c.sku, sum(r.qty) as qty
    from all_counts as c
    join received_po as r
        on r.location_id = c.location_id and r.sku = c.sku
       and (c.counted_at is null or r.received_at > c.counted_at)
    group by all
),
shipped as (
    select c.location_id, c.sku, sum(s.qty) as qty
    from all_counts as c
    join shipments as s
        on s.location_id = c.location_id and s.sku = c.sku
       and (c.counted_at is null or s.shipped_at > c.counted_at) and s.shipped_at <= $as_of
    group by all
),
final as (
    select c.location_id, c.sku, c.counted, c.counted_at,
           coalesce(r.qty, 0) as receipts_since,
           coalesce(s.qty, 0) as shipped_since,
           c.counted + coalesce(r.qty, 0) - coalesce(s.qty, 0) as on_hand
    from all_counts as c
    left join receipts as r using (location_id, sku)
    left join shipped as s using (location_id, sku)
)
select * from final
