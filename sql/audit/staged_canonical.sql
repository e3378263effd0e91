-- The text each staged audit row's hash covers (temp table audit_staged: ord numbered
-- 1..n, event, entity, entity_id, details as JSON), the row to be seq $last_seq + ord:
-- the text audit._canonical builds (compact JSON of the row's fields, UTF-8 left as is).
-- DuckDB escapes only control characters as \u00XX, in upper-case hex where Python
-- writes lower case: a row whose text holds a \u00 gets null here, and audit.py builds
-- its text itself (rare: a control character, or those six characters in an id).
with texts as (
    select ord,
           '[' || ($last_seq + ord)::varchar || ',' || $logged_at_json || ',' || $run_id_json
           || ',' || to_json(event)::varchar || ',' || to_json(entity)::varchar
           || ',' || to_json(entity_id)::varchar || ',' || to_json(details::varchar)::varchar
           || ']' as canonical
    from audit_staged
),

final as (
    select t.ord,
           case when not contains(t.canonical, '\u00') then t.canonical end as canonical,
           case when contains(t.canonical, '\u00')
                then [s.event, s.entity, s.entity_id, s.details::varchar] end as fields
    from texts as t
    join audit_staged as s using (ord)
)

select * from final order by ord
