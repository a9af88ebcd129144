-- one row per currency and closed 1-minute bar (currency, rate_at): what one unit of the currency is
-- worth in the account currency, from the mid close of a pair quoted in the symbol registry that
-- holds both (direct: GBPUSD gives GBP; inverse: USDJPY gives JPY as 1 / mid). rate_at is the bar's
-- end, so a conversion as of time t uses the last minute closed by t (no look-ahead). A currency with
-- no such pair has no rows: conversions needing it come out NULL (see the to_account macro).
{%- set account = var('account_currency') %}
{%- set legs = [] %}
{%- for name, spec in var('instruments').items() %}
  {%- if spec['quote'] == account and spec['base'] != account %}
    {%- do legs.append((name, spec['base'], 'mid_close')) %}
  {%- elif spec['base'] == account and spec['quote'] != account %}
    {%- do legs.append((name, spec['quote'], '1 / mid_close')) %}
  {%- endif %}
{%- endfor %}
{%- for name, currency, rate in legs %}
select '{{ currency }}' as currency, bar_end_at as rate_at, {{ rate }} as rate
from {{ ref('stg_tickwave__bars_1m') }}
where symbol = '{{ name }}' and mid_close > 0
union all
{%- endfor %}
select '' as currency, toDateTime64(0, 3, 'UTC') as rate_at, toFloat64(0) as rate
where 0
