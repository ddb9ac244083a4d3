with

open_stays as (

    select segment, user_id, valid_from
    from {{ ref('segment_membership_history') }}
    where valid_to is null

),

members as (

    select segment, user_id, is_holdout from {{ ref('int_segment_members') }}

),

final as (

    select
        open_stays.segment,
        open_stays.user_id,
        open_stays.valid_from as entered_at,
        members.is_holdout
    from open_stays
    inner join members
        on open_stays.segment = members.segment
        and open_stays.user_id = members.user_id

)

select * from final
