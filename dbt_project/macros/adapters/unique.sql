{#- dbt's `unique` test on DuckDB. The test lists every value held more than once; on a
    table of ten million events that grouping by the text itself is most of a run's test
    time. Counting the distinct 64-bit hashes first costs half as much, and when they are
    as many as the values (no duplicate, no hash collision) the grouping is skipped; when
    they are fewer the exact grouping runs. The failing rows are dbt's own in every case. -#}
{% macro duckdb__test_unique(model, column_name) %}

with counts as (

    -- hash() of a null is not null: nulls are left out here as the test leaves them out.
    select
        count(*) as values_held,
        count(distinct hash({{ column_name }})) as distinct_hashes
    from {{ model }}
    where {{ column_name }} is not null

)

select
    {{ column_name }} as unique_field,
    count(*) as n_records

from {{ model }}
where {{ column_name }} is not null
    and (select values_held > distinct_hashes from counts)
group by {{ column_name }}
having count(*) > 1

{% endmacro %}
