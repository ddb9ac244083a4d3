{{ config(materialized='ephemeral') }}

{#- Every id an erasure removes: the erased user_ids, and every anonymous_id ever seen
    together with one of them (so the visitor's pre-login events go too). Erasure is not
    bounded by as_of: it applies to every run after the request lands. -#}

with

final as (

    {{ erased_identities_query() }}

)

select * from final
