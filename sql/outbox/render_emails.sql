-- The emails of the sections in render_sections (message_sections.sql), as compose() makes
-- them: an email of one message is that section framed alone by the layout
-- (config/templates/_layout.toml); an email of several messages (several orders of one
-- customer) joins their sections in order_id order under subject_many with their order
-- ids. Slots: the separators and the layout compiled (backorders/adapters/message_sql.py).
with single as (
    select email_key, section_subject as subject, {{single_text}} as body_text,
           {{single_html}} as body_html
    from render_sections
    where email_size = 1
),
emails as (
    -- the lists of one group are filled row by row together, so they stay aligned;
    -- list_grade_up gives their order by order_id (an ORDER BY inside the aggregates, or one
    -- list of structs sorted, would cost about twice as much: docs/performance.md)
    select email_key, any_value(name_text) as name_text, any_value(name_html) as name_html,
           list_grade_up(list(order_id)) as by_order,
           list(order_id) as order_id_list,
           list(section_text) as text_list,
           list(section_html) as html_list
    from render_sections
    where email_size > 1
    group by email_key
),
joined as (
    select email_key, name_text, name_html,
           array_to_string(list_select(order_id_list, by_order), ', ') as order_ids,
           array_to_string(list_select(text_list, by_order), {{text_separator}})
               as sections_text,
           array_to_string(list_select(html_list, by_order), {{html_separator}})
               as sections_html
    from emails
),
several as (
    select email_key, {{subject_many}} as subject, {{frame_text}} as body_text,
           {{frame_html}} as body_html
    from joined
),
final as (
    select * from single
    union all
    select * from several
)
select * from final
