select
    user_id,
    purchases_30d,
    revenue_30d
from {{ ref('user_metrics') }}
where purchases_30d >= {{ var('segments__frequent_buyer_min_orders') }}
