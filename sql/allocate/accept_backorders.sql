-- What stock did not cover is a backorder: accepted in rank order up to the
-- product's max_backorder_qty; the rest, and all of a product that cannot be
-- backordered, is refused (the customer gets a cancellation offer).
create or replace temp table _accept as
with need as (
    select d.order_id, d.line_no, d.sku, d.priority_rank, d.backorderable, d.max_backorder_qty,
           d.qty_open - coalesce(s.qty, 0) as need
    from demand_lines as d
    left join (select order_id, line_no, sum(qty) as qty from _stock_alloc group by all) as s
        using (order_id, line_no)
),
running as (
    select *,
           coalesce(sum(need) over (partition by sku order by priority_rank
                                    rows between unbounded preceding and 1 preceding), 0) as before
    from need
),
final as (
    select order_id, line_no, sku, priority_rank, need,
           case when not backorderable then 0
                when max_backorder_qty is null then need
                else least(need, greatest(0, max_backorder_qty - before)) end as accepted
    from running
)
select *, need - accepted as refused from final
