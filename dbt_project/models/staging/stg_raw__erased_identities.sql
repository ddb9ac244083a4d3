{#- Every id an erasure removes: the erased user_ids, and every anonymous_id ever seen
    together with one of them (so the visitor's pre-login events go too). Erasure is not
    bounded by as_of: it applies to every run after the request lands. -#}

with

requests as (

    select user_id from {{ ref('stg_raw__erasure_requests') }}

),

events as (

    select user_id, anonymous_id from {{ source('raw', 'events') }}

),

linked_anonymous_ids as (

    select distinct anonymous_id as identity
    from events
    where anonymous_id is not null
        and user_id in (select user_id from requests)

),

final as (

    select user_id as identity from requests
    union
    select identity from linked_anonymous_ids

)

select * from final
