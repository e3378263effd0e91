-- The sku's supply in drawing order: what it had, what this line took, what is left out.
with mine as (
    select supply_kind, supply_ref, sum(qty) as taken
    from allocations
    where run_id = (select run_id from line_results_run)
      and order_id = $order_id and line_no = $line_no
    group by all
)
select s.supply_kind, s.supply_ref, s.available_on, s.qty_before_safety, s.qty, s.usable, s.note,
       coalesce(m.taken, 0) as taken
from supply_lots as s
left join mine as m using (supply_kind, supply_ref)
where s.sku = $sku
order by s.supply_kind <> 'stock', s.available_on, s.supply_ref
