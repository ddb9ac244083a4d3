{%- set prior_weeks = 3 -%}
{%- set min_drop = var('segments__at_risk_min_visit_drop') -%}
{%- if min_drop is not number or min_drop is boolean or min_drop < 0 or min_drop > 1 -%}
    {{ exceptions.raise_compiler_error("segments__at_risk_min_visit_drop must be a number from 0 to 1, not " ~ min_drop) }}
{%- endif -%}

with

user_traits as (

    select * from {{ ref('user_traits') }}

),

final as (

    -- Sessions of the last 7 days against the weekly rate of the 21 days before
    -- (sessions_prior_21d / 3), compared multiplied out so the arithmetic stays exact.
    select
        user_id,
        sessions_7d,
        sessions_prior_21d
    from user_traits
    where
        sessions_prior_21d >= {{ var('segments__at_risk_min_prior_sessions') }}
        and sessions_7d * {{ prior_weeks }} <= sessions_prior_21d * (1 - {{ min_drop }})

)

select * from final
