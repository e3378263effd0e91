-- The supplier to order each sku from. Every supplier that has had a PO line of the sku,
-- with what was measured of it: from the
-- PO lines received by the run's as-of, the share received on or before their first ETA
-- (first_expected_at: the ETA first stored, before supplier updates moved it) and the lead
-- time from the line's order date (first_seen_at: when the feed first carried it) to its
-- receipt, for this supplier and sku, else for this supplier over all its skus. A line
-- first seen already received has no measurable lead time (it counts for on-time only).
-- Without any measured lead time, products.lead_time_days, else none. Kept: each sku's
-- best supplier, by the rule of domain.replenishment.choose_supplier (highest on-time
-- rate, measured before unmeasured, then shortest lead time, then supplier id).
create or replace temp table _rp_options as
with received as (
    select supplier_id, sku,
           (received_at::date <= coalesce(first_expected_at, expected_at))::integer as on_time,
           case when coalesce(first_seen_at, updated_at) < received_at
                then (epoch(received_at) - epoch(coalesce(first_seen_at, updated_at))) / 86400.0
           end as lead_days
    from purchase_orders
    where status = 'received' and received_at <= $as_of
),
by_supplier_sku as (
    select supplier_id, sku, avg(on_time) as on_time_rate, count(lead_days) as samples,
           avg(lead_days) as lead_time, coalesce(stddev_samp(lead_days), 0) as lead_time_sd
    from received
    group by all
),
by_supplier as (
    select supplier_id, avg(on_time) as on_time_rate, count(lead_days) as samples,
           avg(lead_days) as lead_time, coalesce(stddev_samp(lead_days), 0) as lead_time_sd
    from received
    group by all
),
candidates as (
    select distinct sku, supplier_id
    from purchase_orders
),
final as (
    select c.sku, c.supplier_id,
           coalesce(ss.on_time_rate, s.on_time_rate) as on_time_rate,
           case when ss.samples > 0 then ss.lead_time
                when s.samples > 0 then s.lead_time
                else p.lead_time_days::double end as lead_time,
           case when ss.samples > 0 then ss.lead_time_sd
                when s.samples > 0 then s.lead_time_sd
                else 0.0 end as lead_time_sd,
           case when ss.samples > 0 then 'supplier_sku'
                when s.samples > 0 then 'supplier'
                when p.lead_time_days is not null then 'product'
                else 'none' end as lead_time_source,
           coalesce(case when ss.samples > 0 then ss.samples else s.samples end, 0) as samples
    from candidates as c
    semi join products as p0 on p0.sku = c.sku
    left join by_supplier_sku as ss using (supplier_id, sku)
    left join by_supplier as s using (supplier_id)
    left join products as p using (sku)
),
best as (
    select *
    from final
    qualify row_number() over (
        partition by sku
        order by on_time_rate desc nulls last, lead_time asc nulls last, supplier_id
    ) = 1
)
select * from best
