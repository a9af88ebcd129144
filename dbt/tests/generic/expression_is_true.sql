{# Every row satisfies the expression (as dbt_utils.expression_is_true, without the package download). #}
{% test expression_is_true(model, expression) %}
select * from {{ model }} where not ({{ expression }})
{% endtest %}
