-- The accuracy of the stock the allocation uses: per location/sku, the count that book
-- stock starts from (table stock) and its judgment (inventory_accuracy). The digest
-- names the set of inaccurate counts, so that an override accepts exactly those.
with basis as (
    select s.location_id, s.sku, s.as_of, bool_and(j.accurate) as accurate
    from stock as s
    join inventory_accuracy as j
        on j.location_id = s.location_id and j.sku = s.sku and j.as_of = s.as_of
    group by all
),
final as (
    select count(*) as judged_items,
           count(*) filter (where not accurate) as inaccurate_items,
           coalesce(bit_xor(hash(location_id, sku, as_of)) filter (where not accurate), 0)
               as digest
    from basis
)
select judged_items, inaccurate_items,
       inaccurate_items::varchar || ':' || digest::varchar as basis_digest
from final
