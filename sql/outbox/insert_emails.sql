-- This part's emails that carry several messages (several orders of one customer): their
-- sections (queue_sections) in order_id order, framed by the layout as compose() does,
-- under subject_many with their order ids. Slots: the separators and the layout compiled.
insert into outbox_emails (email_key, customer_id, to_email, to_name, subject, body_text,
                           body_html, kinds, message_keys, created_at)
with emails as (
    -- the lists of one group are filled row by row together, so they stay aligned;
    -- list_grade_up gives their order by order_id (an ORDER BY inside the aggregates, or one
    -- list of structs sorted, would cost about twice as much: docs/performance.md)
    select email_key, any_value(customer_id) as customer_id, any_value(to_email) as to_email,
           any_value(to_name) as to_name, any_value(name_text) as name_text,
           any_value(name_html) as name_html,
           list_grade_up(list(order_id)) as by_order,
           list(order_id) as order_id_list,
           list(message_key) as key_list,
           list(section_text) as text_list,
           list(section_html) as html_list,
           list_sort(list_distinct(list(kind))) as kinds
    from queue_sections
    where email_size > 1
    group by email_key
),
joined as (
    select email_key, customer_id, to_email, to_name, name_text, name_html, kinds,
           array_to_string(list_select(order_id_list, by_order), ', ') as order_ids,
           array_to_string(list_select(text_list, by_order), {{text_separator}})
               as sections_text,
           array_to_string(list_select(html_list, by_order), {{html_separator}})
               as sections_html,
           list_select(key_list, by_order) as message_keys
    from emails
),
final as (
    select email_key, customer_id, to_email, to_name, {{subject_many}} as subject,
           {{frame_text}} as body_text, {{frame_html}} as body_html,
           kinds, message_keys, $now as created_at
    from joined
    anti join outbox_emails using (email_key)
)
select * from final
