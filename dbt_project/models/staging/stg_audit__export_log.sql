{{ config(materialized='ephemeral') }}

{#- One row per user written to a segment file of an export, as the export recorded it.
    Ephemeral, like stg_raw__events: it is read where it is used, so no relation is
    rebuilt on every run. -#}

with

source as (

    select * from {{ source('audit', 'export_log') }}

),

final as (

    select
        export_id,
        segment,
        user_id,
        entered_at,
        exported_at
    from source

)

select * from final
