{#- Every id an erasure removes: the erased user_ids, and every anonymous_id ever seen
    together with one of them. A query of one column, identity. Used by the staging model
    stg_raw__erased_identities and by the post-hook that deletes erased users' events. -#}
{% macro erased_identities_query() -%}
    select user_id as identity
    from {{ source('raw', 'erasure_requests') }}
    union
    select distinct anonymous_id as identity
    from {{ source('raw', 'events') }}
    where anonymous_id is not null
        and user_id in (select user_id from {{ source('raw', 'erasure_requests') }})
{%- endmacro %}

{#- True for an event row (columns user_id, anonymous_id) that carries no erased identity;
    `erased_identities` is a relation or CTE with the column identity. -#}
{% macro carries_no_erased_identity(erased_identities) -%}
    (user_id is null or user_id not in (select identity from {{ erased_identities }}))
        and (anonymous_id is null
            or anonymous_id not in (select identity from {{ erased_identities }}))
{%- endmacro %}
