{#- The scores are dbt Python models, built on DuckDB only: elsewhere the segment is empty. -#}
{% if target.type == 'duckdb' %}
select
    user_id,
    churn_probability
from {{ ref('user_scores') }}
where churn_probability > {{ var('segments__likely_to_churn_more_than_probability') }}
{% else %}
select
    cast(null as {{ dbt.type_string() }}) as user_id,
    cast(null as {{ type_double() }}) as churn_probability
where 1 = 0
{% endif %}
