{% macro retention_ttl() %}
  {#- This mart's TTL as the retention table gives it (adapters/retention.py: mart_retention), passed by Tickwave in
      the mart_ttls variable (orchestration/dbt_project.py: dbt_vars); none when dbt runs without it. -#}
  {{ return(var('mart_ttls', {}).get(this.identifier)) }}
{% endmacro %}

{% macro keep_retention_ttl() %}
  {#- An incremental mart's table outlives its runs (a table mart is created anew each run, with its TTL): when the
      engine's TTL (system.tables.engine_full) differs from the retention table's, alter it; else nothing. -#}
  {%- if execute and config.get('materialized') == 'incremental' -%}
    {%- set found = run_query("select engine_full from system.tables where database = '" ~ this.schema
                              ~ "' and name = '" ~ this.identifier ~ "'") -%}
    {%- set engine = found.columns[0].values()[0] if found.rows | length > 0 else '' -%}
    {%- set current = engine.split(' TTL ')[1].split(' SETTINGS ')[0] | trim if ' TTL ' in engine else none -%}
    {%- set wanted = retention_ttl() -%}
    {%- if wanted and current != wanted -%}
      alter table {{ this }} modify ttl {{ wanted }}
    {%- elif not wanted and current -%}
      alter table {{ this }} remove ttl
    {%- endif -%}
  {%- endif -%}
{% endmacro %}
