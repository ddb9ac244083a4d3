with

source as (

    select * from {{ source('raw', 'customers') }}

),

latest as (

    select
        *,
        row_number() over (
            partition by customer_id
            order by _batch_id desc, _source_file desc, _source_row desc
        ) as version_rank
    from source

),

final as (

    select
        customer_id as user_id,
        email,
        phone,
        signed_up_at,
        country,
        consent_email as has_email_consent,
        consent_sms as has_sms_consent,
        consent_push as has_push_consent,
        _ingested_at as ingested_at
    from latest
    where version_rank = 1

)

select * from final
