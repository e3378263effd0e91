-- This run's emails that carry several messages (several orders of one customer): their
-- sections in order_id order, framed by the layout as compose() does, under subject_many
-- with their order ids. Each section is its message's outbox row (insert_messages.sql)
-- without the layout's frame around it: the text before and after $sections, which
-- depends only on the customer's name (slots text_before, text_after, html_before,
-- html_after). An email of one message is that row (insert_single_emails.sql).
insert into outbox_emails (email_key, customer_id, to_email, to_name, subject, body_text,
                           body_html, kinds, message_keys, created_at)
with carried as (
    select e.email_key, q.message_key, q.customer_id, q.to_email, q.to_name, q.order_id,
           q.kind, coalesce(nullif(q.to_name, ''), 'customer') as name_text
    from queue_new as q
    join queue_emails as e on e.msg_no = q.rowid
    where e.email_size > 1
),
named as (
    select c.*,
           replace(replace(replace(replace(replace(c.name_text,
               '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#x27;')
               as name_html,
           o.body_text, o.body_html
    from carried as c
    join outbox as o on o.message_key = c.message_key and o.run_id = $run_id
),
sections as (
    select email_key, message_key, customer_id, to_email, to_name, order_id, kind,
           name_text, name_html,
           substring(body_text, length({{text_before}}) + 1,
                     length(body_text) - length({{text_before}}) - length({{text_after}}))
               as section_text,
           substring(body_html, length({{html_before}}) + 1,
                     length(body_html) - length({{html_before}}) - length({{html_after}}))
               as section_html
    from named
),
emails as (
    -- the sections by order_id: one list of structs sorted, then its fields
    select email_key, any_value(customer_id) as customer_id, any_value(to_email) as to_email,
           any_value(to_name) as to_name, any_value(name_text) as name_text,
           any_value(name_html) as name_html,
           list_sort(list({'order_id': order_id, 'message_key': message_key,
                           'text': section_text, 'html': section_html})) as parts,
           list_sort(list_distinct(list(kind))) as kinds
    from sections
    group by email_key
),
joined as (
    select email_key, customer_id, to_email, to_name, name_text, name_html, kinds,
           array_to_string(list_transform(parts, lambda p: p.order_id), ', ') as order_ids,
           array_to_string(list_transform(parts, lambda p: p.text), {{text_separator}})
               as sections_text,
           array_to_string(list_transform(parts, lambda p: p.html), {{html_separator}})
               as sections_html,
           list_transform(parts, lambda p: p.message_key) as message_keys
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
