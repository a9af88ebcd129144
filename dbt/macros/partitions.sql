{% macro partition_by_month(day_column) %}
  {#- An incremental mart whose table was built before it became incremental (a table mart: one partition) is
      copied once into a table partitioned by month and renamed into its place, so that insert_overwrite can
      replace its months; a partitioned table is left alone. A pre-hook: it runs before the model's rows. -#}
  {%- if execute and is_incremental() -%}
    {%- set found = run_query("select partition_key from system.tables where database = '" ~ this.schema
                              ~ "' and name = '" ~ this.identifier ~ "'") -%}
    {%- if found.rows | length > 0 and found.columns[0].values()[0] == '' -%}
      {%- set staged = this.incorporate(path={"identifier": this.identifier ~ '__by_month'}) -%}
      {%- set old = this.incorporate(path={"identifier": this.identifier ~ '__unpartitioned'}) -%}
      {%- do run_query("drop table if exists " ~ staged) -%}
      {%- do run_query("drop table if exists " ~ old) -%}
      {%- do run_query("create table " ~ staged ~ " as " ~ this ~ " engine = " ~ config.get('engine')
                       ~ " partition by toYYYYMM(" ~ day_column ~ ") order by " ~ config.get('order_by')) -%}
      {%- do run_query("insert into " ~ staged ~ " select * from " ~ this) -%}
      {%- do run_query("rename table " ~ this ~ " to " ~ old ~ ", " ~ staged ~ " to " ~ this) -%}
      {%- do run_query("drop table " ~ old) -%}
    {%- endif -%}
  {%- endif -%}
{% endmacro %}
