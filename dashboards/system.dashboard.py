"""System resources: CPU, memory, disk and network per host (node-exporter), per process
(each service's own process metrics) and per container (cAdvisor, where containers run)
(docs/OPERATIONS.md, "Dashboards")."""

from dashboards.panels import dashboard, timeseries

# Real filesystems only: not the kernel's, not container layers.
FILESYSTEMS = '{fstype!~"tmpfs|ramfs|squashfs|nsfs|overlay|fuse.lxcfs|autofs"}'
# Physical and virtual NICs of the host, not loopback, bridges or container veths.
NICS = '{device!~"lo|veth.*|docker.*|br-.*|ifb.*"}'
CONTAINERS = '{name!=""}'  # cAdvisor's named containers (compose service containers)

dashboard = dashboard(
    "mediaflow — system resources", "mediaflow-system",
    "Hosts (node-exporter), processes (the process_* metrics every service exports) and "
    "containers (cAdvisor, in docker compose).",
    [
        ("Hosts", [
            timeseries("CPU busy by host", {
                "{{instance}}": 'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[1m]))'
                                " / count by (instance) (node_cpu_seconds_total{mode=\"idle\"})",
            }, unit="percentunit", description=(
                "Share of all cores not idle over a minute. FFmpeg steps are CPU-bound: a "
                "worker host near 100 % runs as many steps as it can; more need more hosts.")),
            timeseries("Load average (1 min) per core by host", {
                "{{instance}}": "sum by (instance) (node_load1) / count by (instance) "
                                '(node_cpu_seconds_total{mode="idle"})',
            }, description="Runnable tasks per core; above 1 tasks wait for a CPU."),
            timeseries("Memory used by host", {
                "{{instance}}": "1 - sum by (instance) (node_memory_MemAvailable_bytes) "
                                "/ sum by (instance) (node_memory_MemTotal_bytes)",
            }, unit="percentunit", description=(
                "Share of memory not available to new work (MemAvailable).")),
            timeseries("Disk used by host and mount", {
                "{{instance}} {{mountpoint}}":
                    f"1 - node_filesystem_avail_bytes{FILESYSTEMS} "
                    f"/ node_filesystem_size_bytes{FILESYSTEMS}",
            }, unit="percentunit", description=(
                "Share of each real filesystem in use (space left to unprivileged users). "
                "Scratch space and local storage live here; the MediaflowDiskNearlyFull "
                "alert fires above 90 %.")),
            timeseries("Disk I/O by host", {
                "read {{instance}} {{device}}":
                    "sum by (instance, device) (rate(node_disk_read_bytes_total[1m]))",
                "write {{instance}} {{device}}":
                    "sum by (instance, device) (rate(node_disk_written_bytes_total[1m]))",
            }, unit="Bps", description="Bytes read and written per second per block device."),
            timeseries("Network by host", {
                "in {{instance}} {{device}}": "sum by (instance, device) "
                                              f"(rate(node_network_receive_bytes_total{NICS}[1m]))",
                "out {{instance}} {{device}}": "sum by (instance, device) "
                                               f"(rate(node_network_transmit_bytes_total{NICS}[1m]))",
            }, unit="Bps", description=(
                "Bytes per second through each network interface (uploads, downloads, S3).")),
        ]),
        ("Processes", [
            timeseries("CPU by process", {
                "{{job}} {{instance}}":
                    "sum by (job, instance) (rate(process_cpu_seconds_total[1m]))",
            }, unit="percentunit", description=(
                "CPU time per second of each scraped process (API, workers, Prometheus, "
                "exporters); 1 = one core. A worker's own share excludes its ffmpeg children: "
                "see the host and container panels for those.")),
            timeseries("Resident memory by process", {
                "{{job}} {{instance}}": "sum by (job, instance) (process_resident_memory_bytes)",
            }, unit="bytes", description="Resident set size of each scraped process."),
            timeseries("Open file descriptors by process", {
                "{{job}} {{instance}}": "sum by (job, instance) (process_open_fds)",
            }, description=(
                "Open files and sockets of each process; the API holds one per connection "
                "(MEDIAFLOW_HTTP_MAX_CONNECTIONS caps them).")),
        ]),
        ("Containers", [
            timeseries("CPU by container", {
                "{{name}}":
                    f"sum by (name) (rate(container_cpu_usage_seconds_total{CONTAINERS}[1m]))",
            }, unit="percentunit", description=(
                "CPU per container (cAdvisor); a worker container's includes its ffmpeg "
                "processes. Empty where mediaflow does not run in containers.")),
            timeseries("Memory by container", {
                "{{name}}": f"sum by (name) (container_memory_working_set_bytes{CONTAINERS})",
            }, unit="bytes", description=(
                "Working set per container (cAdvisor), what the kernel's OOM killer weighs.")),
            timeseries("Network by container", {
                "in {{name}}":
                    f"sum by (name) (rate(container_network_receive_bytes_total{CONTAINERS}[1m]))",
                "out {{name}}":
                    f"sum by (name) (rate(container_network_transmit_bytes_total{CONTAINERS}[1m]))",
            }, unit="Bps", description="Bytes per second in and out of each container (cAdvisor)."),
            timeseries("Disk writes by container", {
                "{{name}}":
                    f"sum by (name) (rate(container_fs_writes_bytes_total{CONTAINERS}[1m]))",
            }, unit="Bps", description="Bytes written per second by each container (cAdvisor)."),
        ]),
    ],
)
