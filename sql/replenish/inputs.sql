-- The measured inputs of each sku and location's advice, in sku and location order: the
-- position, the window's demand and the product's policy fields. The supplier options
-- (_rp_options) are joined in Python, per sku.
with final as (
    select ps.sku, ps.location_id, p.status = 'active' as active,
           coalesce(d.demand_units, 0) as demand_units,
           coalesce(d.demand_sum_sq, 0.0) as demand_sum_sq,
           p.lead_time_days::double as product_lead_time,
           ps.on_hand, ps.on_order, ps.committed, ps.backordered,
           p.pack_size, p.safety_stock as configured_safety_stock
    from _rp_position as ps
    join products as p using (sku)
    left join _rp_demand as d using (sku, location_id)
)
select * from final
order by sku, location_id
