{#- The members as of as_of. entered_at is the start of the recorded stay that covers
    as_of, or as_of itself when history does not reach back that far (a backfill). -#}

with

members as (

    select
        segment,
        user_id,
        is_holdout
    from {{ ref('int_segment_members') }}

),

covering_stays as (

    select
        segment,
        user_id,
        valid_from
    from {{ ref('segment_membership_history') }}
    where
        valid_from <= {{ as_of() }}
        and (valid_to is null or valid_to > {{ as_of() }})

),

final as (

    select
        members.segment,
        members.user_id,
        coalesce(covering_stays.valid_from, {{ as_of() }}) as entered_at,
        members.is_holdout
    from members
    left join covering_stays
        on
            members.segment = covering_stays.segment
            and members.user_id = covering_stays.user_id

)

select * from final
