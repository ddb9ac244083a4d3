{#- Fails for every row where the expression is false (an invariant of the model). -#}
{% test expression_is_true(model, expression) %}
    select * from {{ model }} where not ({{ expression }})
{% endtest %}
