{#- The scores are dbt Python models, built on DuckDB only: elsewhere the segment is empty. -#}
{% if target.type == 'duckdb' %}
select
    user_id,
    purchase_probability_7d
from {{ ref('user_scores') }}
where purchase_probability_7d > {{ var('segments__ready_to_buy_more_than_probability') }}
{% else %}
select
    cast(null as {{ dbt.type_string() }}) as user_id,
    cast(null as {{ type_double() }}) as purchase_probability_7d
where 1 = 0
{% endif %}
