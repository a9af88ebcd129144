-- Filled lots of each order equal the sum of its fills, exactly (decimal lots, as the engine counts them).
select orders.client_order_id, orders.filled_lots, fills.lots
from {{ ref('fct_orders') }} as orders
inner join (
    select client_order_id, sum({{ exact('quantity_lots') }}) as lots
    from {{ ref('fct_fills') }}
    group by client_order_id
) as fills
    on fills.client_order_id = orders.client_order_id
where {{ exact('orders.filled_lots') }} != fills.lots
