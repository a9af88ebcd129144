{# The pip of a symbol (var instruments, the symbol registry's); unknown symbols: 0.01 when
   JPY-quoted, else 0.0001. #}
{% macro pip_size(symbol) -%}
  multiIf(
    {%- for name, spec in var('instruments').items() %}
    {{ symbol }} = '{{ name }}', {{ spec['pip_size'] }},
    {%- endfor %}
    endsWith({{ symbol }}, 'JPY'), 0.01, 0.0001)
{%- endmacro %}

{# Units per lot of a symbol (var instruments); unknown symbols: 100,000. #}
{% macro contract_size(symbol) -%}
  multiIf(
    {%- for name, spec in var('instruments').items() %}
    {{ symbol }} = '{{ name }}', {{ spec['contract_size'] }},
    {%- endfor %}
    100000)
{%- endmacro %}

{# A symbol's base and quote currency (var instruments, the symbol registry's); unknown symbols: the
   first and the last three letters of a six-letter FX name. #}
{% macro base_currency(symbol) -%}
  multiIf(
    {%- for name, spec in var('instruments').items() %}
    {{ symbol }} = '{{ name }}', '{{ spec['base'] }}',
    {%- endfor %}
    substring({{ symbol }}, 1, 3))
{%- endmacro %}

{% macro quote_currency(symbol) -%}
  multiIf(
    {%- for name, spec in var('instruments').items() %}
    {{ symbol }} = '{{ name }}', '{{ spec['quote'] }}',
    {%- endfor %}
    substring({{ symbol }}, 4, 3))
{%- endmacro %}

{# An amount in the symbol's quote currency, in the account currency (as tickwave.instruments.convert):
   unchanged when the symbol is quoted in it (EURUSD, XAUUSD); divided by the symbol's own price when
   the account currency is its base (USDJPY, at own_price); otherwise multiplied by the quote
   currency's rate from int_account_rates (EURJPY through USDJPY, EURGBP through GBPUSD), and NULL
   when no rate is known, which the marts' not_null tests turn into a failing build. #}
{% macro to_account(amount, symbol, own_price, rate) -%}
  multiIf(
    {{ quote_currency(symbol) }} = '{{ var("account_currency") }}', {{ amount }},
    {{ base_currency(symbol) }} = '{{ var("account_currency") }}', {{ amount }} / {{ own_price }},
    {{ rate }} > 0, {{ amount }} * {{ rate }},
    NULL)
{%- endmacro %}

{# A Float64 price shown at its symbol's digits (tickwave.instruments.price_sql, passed by Tickwave as
   var price_at_digits with __price__ and __symbol__ placeholders); dbt run by hand: unrounded. #}
{% macro price_at_digits(price, symbol='symbol') -%}
  ({{ var('price_at_digits', '__price__') | replace('__symbol__', symbol) | replace('__price__', price) }})
{%- endmacro %}

{# Seconds in a timeframe such as 1s, 5m, 1h, 1d. #}
{% macro timeframe_seconds(timeframe) -%}
  toUInt32OrZero(substring({{ timeframe }}, 1, length({{ timeframe }}) - 1))
  * multiIf(endsWith({{ timeframe }}, 's'), 1, endsWith({{ timeframe }}, 'm'), 60, endsWith({{ timeframe }}, 'h'), 3600, 86400)
{%- endmacro %}

{# Incremental marts rebuild whole months (their partitions, swapped in by insert_overwrite):
   given var partition_day (a Dagster daily partition), the month holding that day; otherwise, on
   an incremental run, the months holding the mart's last lookback_days; on a first build, everything.
   day_column is the source's day expression, mart_day_column the mart's own day column. #}
{% macro incremental_from(day_column, mart_day_column='day') -%}
  {%- set day = var('partition_day', none) -%}
  {%- if day -%}
  WHERE {{ day_column }} >= toStartOfMonth(toDate('{{ day }}'))
    AND {{ day_column }} < toStartOfMonth(toDate('{{ day }}')) + INTERVAL 1 MONTH
  {%- elif is_incremental() -%}
  WHERE {{ day_column }} >= toStartOfMonth((SELECT max({{ mart_day_column }}) FROM {{ this }}) - {{ var('lookback_days') }})
  {%- endif -%}
{%- endmacro %}

{# A Float64 column (a price, a mark, a rate, a commission) as an exact decimal of its shortest text, as
   tickwave.money.to_decimal converts floats (1.1 is 1.1, not 1.100000000000000088...). #}
{% macro exact(value, scale=18) -%}
  toDecimal256(toString({{ value }}), {{ scale }})
{%- endmacro %}
