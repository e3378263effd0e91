-- The order lines whose promise moved in run $run_id and that drew on a PO line of
-- supplier $supplier_id, in this run's allocation or the one before it: what a
-- supplier-delay rerun reports for the supplier.
with recent_runs as (
    select run_id
    from allocation_runs
    where run_no >= (select max(run_no) - 1 from allocation_runs)
),
supplier_refs as (
    select po_id || ':' || line_no as supply_ref
    from purchase_orders
    where supplier_id = $supplier_id
),
drawn as (
    select distinct a.order_id, a.line_no
    from allocations as a
    join recent_runs as r using (run_id)
    join supplier_refs as s using (supply_ref)
    where a.supply_kind = 'po'
),
final as (
    select pc.order_id, pc.line_no, pc.change, pc.old_promised_date, pc.new_promised_date
    from promise_changes as pc
    join drawn as d using (order_id, line_no)
    where pc.run_id = $run_id and pc.change <> 'new'
)
select * from final
order by order_id, line_no
