# Sourced by bench scripts: CPU time of processes, read from /proc.

# proc_ticks PID...: the CPU ticks (user + system) the PIDs have used so
# far; PIDs that are gone count 0.
proc_ticks() {
    local total=0 pid stat
    for pid in "$@"; do
        stat="$(cat /proc/"$pid"/stat 2>/dev/null)" || continue
        stat="${stat##*) }"
        set -- $stat
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# ticks_to_seconds TICKS: TICKS in seconds, two decimals.
ticks_to_seconds() {
    awk -v t="$1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}

# descendants PID: every PID below PID (children first), one per line.
descendants() {
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        descendants "$child"
        echo "$child"
    done
}
