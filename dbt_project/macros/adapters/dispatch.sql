{#- The default__ form of a macro that has no standard SQL: the compile stops and names the
    file where the warehouse's form goes. -#}
{% macro no_form_for(macro_name, file_name) -%}
    {{ exceptions.raise_compiler_error(
        macro_name ~ " has no form for " ~ target.type ~ ": add " ~ target.type ~ "__"
        ~ macro_name ~ " to dbt_project/macros/adapters/" ~ file_name) }}
{%- endmacro %}
