-- The measured inputs of each sku and location's advice, in sku and location order: the
-- position, the window's demand, the product's policy fields and the sku's best supplier
-- (_rp_options; none when no supplier ever had a PO line of it).
with final as (
    select ps.sku, ps.location_id, p.status = 'active' as active,
           coalesce(d.demand_units, 0)::bigint as demand_units,
           coalesce(d.demand_sum_sq, 0.0) as demand_sum_sq,
           ps.on_hand, ps.on_order, ps.committed, ps.backordered,
           p.pack_size, p.safety_stock as configured_safety_stock,
           o.supplier_id, o.on_time_rate,
           -- a sku no supplier had a PO line of: the product's lead time, else none
           coalesce(o.lead_time, p.lead_time_days::double) as lead_time,
           coalesce(o.lead_time_sd, 0.0) as lead_time_sd,
           coalesce(o.lead_time_source,
                    case when p.lead_time_days is not null then 'product' else 'none' end)
               as lead_time_source,
           coalesce(o.samples, 0)::integer as samples
    from _rp_position as ps
    join products as p using (sku)
    left join _rp_demand as d using (sku, location_id)
    left join _rp_options as o on o.sku = ps.sku
)
select * from final
order by sku, location_id
