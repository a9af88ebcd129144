"""The ops board's panels on Prometheus: latency histograms, lag, orders, restarts, services up.

Their PromQL reads the metric names the processes export (docs/operations.md, "Metrics");
``TICK_TO_SIGNAL_P99`` is shared by the panel, Grafana's alert rule and Prometheus's own
rule file, so the three cannot drift.
"""

from __future__ import annotations

from dashboards.panels import Kind, MetricsPanelSpec

WINDOW = "5m"


def quantile(q: float, histogram: str, by: str = "") -> str:
    """PromQL: the ``q`` quantile of ``histogram`` over the last five minutes (summed over instances)."""
    grouping = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({grouping}) (rate({histogram}_bucket[{WINDOW}])))"


TICK_TO_SIGNAL_P99 = quantile(0.99, "tickwave_dataflow_tick_to_signal_seconds")


def metrics_panels() -> tuple[MetricsPanelSpec, ...]:
    """The Prometheus panels, beside the warehouse's."""
    return (
        MetricsPanelSpec(
            "Tick-to-signal latency",
            Kind.TIME_SERIES,
            (("p50", quantile(0.5, "tickwave_dataflow_tick_to_signal_seconds")), ("p99", TICK_TO_SIGNAL_P99)),
            "s",
            "From the earliest moment a bar can close (its end + streams.late_wait_ms) to its signal sent "
            "(tickwave_dataflow_tick_to_signal_seconds, the dataflow's histogram; 5-minute rate).",
        ),
        MetricsPanelSpec(
            "Decision, fsync and inference latency (p99)",
            Kind.TIME_SERIES,
            (
                ("decision", quantile(0.99, "tickwave_execution_decision_seconds")),
                ("journal fsync", quantile(0.99, "tickwave_execution_journal_fsync_seconds")),
                ("inference", quantile(0.99, "tickwave_dataflow_inference_seconds")),
            ),
            "s",
            "The execution process's decision of a batch of signals and its journal fsyncs, and the dataflow's model "
            "calls: p99 over 5 minutes from their histograms.",
        ),
        MetricsPanelSpec(
            "Dataflow lag per partition",
            Kind.TIME_SERIES,
            (("partition {{partition}}", "sum by (partition) (tickwave_dataflow_lag_messages)"),),
            "short",
            "Ticks behind the end of each ticks partition at the dataflow's last report "
            "(tickwave_dataflow_lag_messages).",
        ),
        MetricsPanelSpec(
            "Orders, fills and denials per second",
            Kind.TIME_SERIES,
            (
                ("orders", f"sum(rate(tickwave_execution_orders_submitted_total[{WINDOW}]))"),
                ("fills", f"sum(rate(tickwave_execution_fills_total[{WINDOW}]))"),
                ("denied {{check}}", f"sum by (check) (rate(tickwave_execution_orders_denied_total[{WINDOW}]))"),
            ),
            "ops",
            "What the execution process decided, as counted by its metrics (5-minute rate).",
        ),
        MetricsPanelSpec(
            "Restarts by the supervisor",
            Kind.TIME_SERIES,
            (("{{service}}", "sum by (service) (increase(tickwave_supervisor_restarts_total[1h]))"),),
            "short",
            "Restarts of each service within the last hour (tickwave_supervisor_restarts_total).",
        ),
        MetricsPanelSpec(
            "Services up (scraped)",
            Kind.TIME_SERIES,
            (("{{job}}", "up"),),
            "short",
            "1 while Prometheus scrapes the process's /metrics, 0 while it is down (a killed service until "
            "its restart).",
        ),
        MetricsPanelSpec(
            "Warehouse requests and latency",
            Kind.TIME_SERIES,
            (
                ("p95", quantile(0.95, "tickwave_warehouse_query_duration_seconds")),
                ("p99", quantile(0.99, "tickwave_warehouse_query_duration_seconds")),
            ),
            "s",
            "The embedded warehouse's requests, arrival to last byte (tickwave_warehouse_query_duration_seconds).",
        ),
    )
