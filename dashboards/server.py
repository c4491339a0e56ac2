"""Server: the host (node-exporter: CPU, memory, disk, network, load) and the API's process."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from dashboards.alerts import Thresholds
from dashboards.common import (
    NODE_JOB,
    PROMETHEUS,
    SERVER_UID,
    Doc,
    Row,
    assemble,
    job_variable,
    steps,
)
from dashboards.panels import Panels, Q
from dashboards.promql import disk_free_ratio, filesystems, or_none, rate

TITLE = "sentimon / Server"
# Node-exporter series of the hosts picked by the variables.
NODE = 'job="$node_job", instance=~"$instance"'
BY_INSTANCE = "{{instance}}"


def variables() -> list[Builder[model.VariableModel]]:
    node_job = (
        dash.QueryVariable("node_job")
        .label("node job")
        .description("Prometheus scrape job of node-exporter.")
        .datasource(PROMETHEUS)
        .query("label_values(node_uname_info, job)")
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .current(model.VariableOption(selected=True, text=NODE_JOB, value=NODE_JOB))
    )
    instance = (
        dash.QueryVariable("instance")
        .label("host")
        .description("node-exporter instances (hosts).")
        .datasource(PROMETHEUS)
        .query('label_values(node_uname_info{job="$node_job"}, instance)')
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".+")
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )
    return [job_variable(), node_job, instance]


def _node(metric: str, *matchers: str) -> str:
    return f"{metric}{{{', '.join((NODE, *matchers))}}}"


def build(th: Thresholds) -> model.Dashboard:
    p = Panels(th)
    idle, busy = 'mode="idle"', 'mode!="idle"'
    cpu_count = f"count by (instance) ({_node('node_cpu_seconds_total', idle)})"
    cpu_row = [
        p.timeseries(
            "CPU utilisation",
            Doc(
                "Share of CPU time not idle per host (iowait and steal count as idle), over "
                "5 minutes.",
                f"Above {th.cpu:.0%} for 5 minutes: latency suffers; see which process uses it "
                "(API process below).",
                ("HostHighCpuUsage",),
            ),
            "percentunit",
            [Q(f"instance:node_cpu_utilisation:rate5m{{{NODE}}}", BY_INSTANCE)],
            thresholds=steps("green", (th.cpu, "red")),
            min_value=0,
            max_value=1,
            span=8,
        ),
        p.timeseries(
            "CPU by mode",
            Doc(
                "CPU time per mode (user, system, iowait, steal, ...) as a share of all CPUs, "
                "idle left out.",
                "High iowait: the disk is the bottleneck; high steal: a noisy neighbour VM.",
                ("HostHighCpuUsage",),
            ),
            "percentunit",
            [
                Q(
                    f"{rate('node_cpu_seconds_total', busy, job=NODE, by=('instance', 'mode'))}"
                    f" / on (instance) group_left {cpu_count}",
                    "{{instance}} {{mode}}",
                )
            ],
            stack=common.StackingMode.NORMAL,
            span=8,
        ),
        p.timeseries(
            "Load average",
            Doc(
                "1, 5 and 15 minute load averages and the number of CPUs.",
                "Load well above the CPU count: work waits for CPU (or for the disk).",
                ("HostHighCpuUsage",),
            ),
            "short",
            [
                Q(_node("node_load1"), "{{instance}} load1"),
                Q(_node("node_load5"), "{{instance}} load5"),
                Q(_node("node_load15"), "{{instance}} load15"),
                Q(cpu_count, "{{instance}} CPUs"),
            ],
            span=8,
        ),
    ]
    used = f"{_node('node_memory_MemTotal_bytes')} - {_node('node_memory_MemAvailable_bytes')}"
    memory_row = [
        p.timeseries(
            "Memory utilisation",
            Doc(
                "Share of memory in use per host (MemAvailable counts reclaimable cache as free).",
                f"Above {th.memory:.0%} for 5 minutes: the OOM killer may end the API.",
                ("HostHighMemoryUsage",),
            ),
            "percentunit",
            [Q(f"instance:node_memory_utilisation:ratio{{{NODE}}}", BY_INSTANCE)],
            thresholds=steps("green", (th.memory, "red")),
            min_value=0,
            max_value=1,
        ),
        p.timeseries(
            "Memory",
            Doc(
                "Total, used (total minus available) and page cache, per host.",
                "Used approaching total while cache shrinks to nothing.",
                ("HostHighMemoryUsage",),
            ),
            "bytes",
            [
                Q(_node("node_memory_MemTotal_bytes"), "{{instance}} total"),
                Q(used, "{{instance}} used"),
                Q(_node("node_memory_Cached_bytes"), "{{instance}} cache"),
            ],
            min_value=0,
        ),
    ]
    disk_row = [
        p.timeseries(
            "Disk space free",
            Doc(
                "Free share per filesystem: the real filesystems the disk alert watches, "
                "plus / whatever its type (a container's root is overlay, which the alert "
                "skips).",
                f"Below {th.disk_free:.0%}: writes (logs, TSDB, feedback store) will fail.",
                ("HostLowDiskSpace",),
            ),
            "percentunit",
            [
                Q(
                    disk_free_ratio(th.disk_fstype_exclude, NODE),
                    "{{instance}} {{mountpoint}}",
                )
            ],
            thresholds=steps("red", (th.disk_free, "green")),
            min_value=0,
            max_value=1,
        ),
        p.timeseries(
            "Disk space used",
            Doc(
                "Used bytes per filesystem (size minus available), same filesystems.",
                "Growing steadily: find what writes (logs not rotated, TSDB retention).",
                ("HostLowDiskSpace",),
            ),
            "bytes",
            [
                Q(
                    filesystems(
                        "node_filesystem_size_bytes",
                        "-",
                        "node_filesystem_avail_bytes",
                        th.disk_fstype_exclude,
                        NODE,
                    ),
                    "{{instance}} {{mountpoint}}",
                )
            ],
            min_value=0,
        ),
        p.timeseries(
            "Disk throughput",
            Doc(
                "Bytes read and written per second per disk device (written drawn below 0; "
                "device none at 0 when node-exporter reports no disk, e.g. only loop devices).",
                "Sustained writes near the device's limit with high iowait.",
            ),
            "Bps",
            [
                Q(
                    or_none(
                        rate("node_disk_read_bytes_total", job=NODE, by=("instance", "device")),
                        "device",
                    ),
                    "{{instance}} {{device}} read",
                ),
                Q(
                    or_none(
                        rate("node_disk_written_bytes_total", job=NODE, by=("instance", "device")),
                        "device",
                    ),
                    "{{instance}} {{device}} written",
                ),
            ],
        ).override_by_regexp(".* written", [_below_zero()]),
        p.timeseries(
            "Disk busy",
            Doc(
                "Share of time each disk device was busy with I/O.",
                "Near 100%: the disk is saturated; everything that writes slows down.",
            ),
            "percentunit",
            [
                Q(
                    or_none(
                        rate(
                            "node_disk_io_time_seconds_total", job=NODE, by=("instance", "device")
                        ),
                        "device",
                    ),
                    "{{instance}} {{device}}",
                )
            ],
            min_value=0,
        ),
    ]
    network_row = [
        p.timeseries(
            "Network traffic",
            Doc(
                "Bytes received and sent per second per network interface, loopback included "
                "(the native stack talks over it); sent drawn below 0.",
                "Near the link's capacity, or far above the usual for the request rate.",
            ),
            "Bps",
            [
                Q(
                    rate("node_network_receive_bytes_total", job=NODE, by=("instance", "device")),
                    "{{instance}} {{device}} received",
                ),
                Q(
                    rate("node_network_transmit_bytes_total", job=NODE, by=("instance", "device")),
                    "{{instance}} {{device}} sent",
                ),
            ],
        ).override_by_regexp(".* sent", [_below_zero()]),
        p.timeseries(
            "Network errors and drops",
            Doc(
                "Receive and transmit errors and dropped packets per second, all interfaces.",
                "Anything steadily above 0: a faulty link or an overloaded interface.",
            ),
            "pps",
            [
                Q(
                    rate(f"node_network_{direction}_{kind}_total", job=NODE, by=("instance",)),
                    f"{{{{instance}}}} {direction} {kind}",
                )
                for direction in ("receive", "transmit")
                for kind in ("errs", "drop")
            ],
            min_value=0,
        ),
    ]
    process_row = [
        p.timeseries(
            "API process CPU",
            Doc(
                "CPU used by the API process per instance, in cores (1 = one core fully busy).",
                "Flat at its thread count while latency grows: the API is CPU-bound; scale "
                "out or give it more cores.",
                ("HostHighCpuUsage", "SentimentHighLatencyP95"),
            ),
            "percentunit",
            [Q(rate("process_cpu_seconds_total", by=("instance",)), BY_INSTANCE)],
            min_value=0,
            span=8,
        ),
        p.timeseries(
            "API process memory",
            Doc(
                "Resident (RSS) and virtual memory of the API process per instance.",
                "RSS growing without bound: a leak; compare with the host's memory.",
                ("HostHighMemoryUsage",),
            ),
            "bytes",
            [
                Q('process_resident_memory_bytes{job="$job"}', "{{instance}} resident"),
                Q('process_virtual_memory_bytes{job="$job"}', "{{instance}} virtual"),
            ],
            min_value=0,
            span=8,
        ),
        p.timeseries(
            "API process open files",
            Doc(
                "Open file descriptors of the API process and its limit.",
                "Approaching the limit: connections or files leak; new requests will fail.",
            ),
            "short",
            [
                Q('process_open_fds{job="$job"}', "{{instance}} open"),
                Q('process_max_fds{job="$job"}', "{{instance}} limit"),
            ],
            min_value=0,
            span=8,
        ),
    ]
    return assemble(
        SERVER_UID,
        TITLE,
        "The hosts (node-exporter) and the API's own process: CPU, memory, disk, network.",
        [
            Row("CPU and load", cpu_row),
            Row("Memory", memory_row),
            Row("Disk", disk_row),
            Row("Network", network_row),
            Row("API process", process_row),
        ],
        variables=variables(),
        tags=["server"],
    )


def _below_zero() -> model.DynamicConfigValue:
    return model.DynamicConfigValue(id_val="custom.transform", value="negative-Y")
