-- This part's emails that carry one message: compose() of one section, which is what the
-- message's outbox row says (insert_messages.sql). Slots: frame_text and frame_html, the
-- layout compiled.
insert into outbox_emails (email_key, customer_id, to_email, to_name, subject, body_text,
                           body_html, kinds, message_keys, created_at)
with final as (
    select s.email_key, s.customer_id, s.to_email, s.to_name, s.section_subject as subject,
           {{frame_text}} as body_text, {{frame_html}} as body_html,
           [s.kind] as kinds, [s.message_key] as message_keys, $now as created_at
    from queue_sections as s
    anti join outbox_emails as e using (email_key)
    where s.email_size = 1
)
select * from final
