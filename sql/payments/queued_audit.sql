-- One audit row per payment request just decided (temp table payment_new), staged for
-- the hash chain (sql/audit/staged_canonical.sql), in the order order_id, request_key. The
-- details keys are sorted, as audit.append writes them, so a row reads the same
-- whichever way it was written.
create or replace temp table audit_staged as
with final as (
    select row_number() over (order by order_id, request_key) as ord,
           $event::varchar as event,
           'order' as entity,
           order_id as entity_id,
           json_object(
               'amount', amount,
               'currency', currency,
               'final_capture', final_capture,
               'kind', kind,
               'payment_ref', payment_ref,
               'preview', preview,
               'request_key', request_key
           ) as details
    from payment_new
)

select * from final
