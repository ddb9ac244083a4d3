{#- Buy-till-you-die summary in the convention of the lifetimes library
    (summary_data_from_transaction_data, freq "D", observation end = as_of), in days. -#}

with

purchase_days as (

    select
        user_id,
        cast(occurred_at as date) as purchase_day,
        cast(sum(purchase_amount) as {{ type_money() }}) as day_revenue
    from {{ ref('int_events_stitched') }}
    where event_type = 'purchase'
    group by user_id, cast(occurred_at as date)

),

ranked_days as (

    select
        *,
        min(purchase_day) over (partition by user_id) as first_purchase_day
    from purchase_days

),

summary as (

    select
        user_id,
        count(*) - 1 as frequency,
        {{ dbt.datediff('min(purchase_day)', 'max(purchase_day)', 'day') }} as recency,
        {{ dbt.datediff('min(purchase_day)', 'cast(' ~ as_of() ~ ' as date)', 'day') }} as t,
        -- The mean day's revenue over repeat purchase days; 0 without repeat purchases.
        -- The mean of exact day totals, rounded to 6 decimals: the same digits every run.
        cast(coalesce(
            avg(case when purchase_day > first_purchase_day then day_revenue end), 0
        ) as {{ type_money(6) }}) as monetary_value
    from ranked_days
    group by user_id

),

scored as (

    -- Quintile scores, 5 best; tied customers get the same score.
    select
        *,
        1 + floor(4.9999 * percent_rank() over (order by t - recency desc)) as r_score,
        1 + floor(4.9999 * percent_rank() over (order by frequency)) as f_score,
        1 + floor(4.9999 * percent_rank() over (order by monetary_value)) as m_score
    from summary

),

final as (

    select
        user_id,
        frequency,
        cast(recency as {{ dbt.type_bigint() }}) as recency,
        cast(t as {{ dbt.type_bigint() }}) as {{ adapter.quote('T') }},
        monetary_value,
        cast(r_score as {{ dbt.type_int() }}) as r_score,
        cast(f_score as {{ dbt.type_int() }}) as f_score,
        cast(m_score as {{ dbt.type_int() }}) as m_score,
        case
            when r_score >= 4 and f_score >= 4 then 'champions'
            when f_score >= 4 then 'loyal'
            when r_score >= 4 and f_score >= 2 then 'potential_loyalists'
            when r_score >= 4 then 'new_customers'
            when r_score <= 2 and f_score >= 3 then 'at_risk'
            when r_score <= 2 then 'hibernating'
            else 'needs_attention'
        end as rfm_segment
    from scored

)

select * from final
