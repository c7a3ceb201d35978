# shellcheck shell=bash
# Sourced by bench scripts: processes — their CPU time (from /proc), their
# trees, and stopping the ones a script started.

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

# stop_all: stops the servers in the caller's STARTED array (top PIDs it
# started): SIGTERM to each, then SIGKILL to whatever of their trees is left
# after 5 s; empties STARTED. Only PIDs the script started.
stop_all() {
    local pid tree=() deadline
    for pid in "${STARTED[@]}"; do
        # shellcheck disable=SC2207 # PIDs: one word each
        tree+=($(descendants "$pid") "$pid")
        kill -TERM "$pid" 2>/dev/null || true
    done
    deadline=$((SECONDS + 5))
    for pid in "${tree[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    done
    for pid in "${tree[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "${STARTED[@]}"; do wait "$pid" 2>/dev/null || true; done
    STARTED=()
}
