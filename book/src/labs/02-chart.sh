#!/usr/bin/env bash
# Draws book/src/labs/02-chart.svg, the chart on the lab 02 page, from a real
# run of the lab's reference solution in the VM: the wall time of the same dd
# command bare, under the eBPF counter, under the ptrace counter and under
# strace -c, as the guest agent measured each step.
#
# Usage: bash book/src/labs/02-chart.sh [REPORT.json]
#   With no argument it runs `labctl lab 2 --solution --json` first; with one
#   it draws from that report. The numbers come from the `durations:` line of
#   the `overhead` check in the report.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
svg="$here/02-chart.svg"
cd "$repo"

report=${1:-}
if [ -z "$report" ]; then
    report=$(mktemp)
    trap 'rm -f "$report"' EXIT
    echo "> labctl lab 2 --solution --json $report" >&2
    cargo run -q -p labctl -- lab 2 --solution --json "$report" >&2
fi

# The report is JSON on one line or many; the durations line sits inside a
# check's detail string, as `durations: bare=41ms ebpf=140ms ...`.
durations=$(grep -o 'durations:[^"\\]*' "$report" | head -n 1 || true)
[ -n "$durations" ] || { echo "error: $report has no durations line (did the overhead check run?)" >&2; exit 1; }
kernel=$(grep -o '"kernel": *"[^"]*"' "$report" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')
accel=$(grep -o '"accel": *"[^"]*"' "$report" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')
# The workload, as the lab's manifest runs it.
bytes=$(grep -o 'count=[0-9]*' labs/02-ebpf-vs-ptrace/lab.toml | head -n 1 | cut -d= -f2)

echo "$durations" | tr ' ' '\n' | grep '=' | sed 's/ms$//' | awk -F= \
    -v kernel="$kernel" -v accel="${accel:-?}" -v bytes="$bytes" '
    { ms[$1] = $2 }
    END {
        order[1] = "bare";   label[1] = "bare";              color[1] = "#6b7280"
        order[2] = "ebpf";   label[2] = "eBPF counter";      color[2] = "#15803d"
        order[3] = "ptrace"; label[3] = "ptrace counter";    color[3] = "#b91c1c"
        order[4] = "strace"; label[4] = "strace -c";         color[4] = "#7f1d1d"
        max = 0
        for (i = 1; i <= 4; i++) {
            if (!(order[i] in ms)) { print "error: no " order[i] " duration" > "/dev/stderr"; exit 1 }
            if (ms[order[i]] > max) max = ms[order[i]]
        }
        left = 130; width = 370; top = 56; row = 34; bar = 22
        height = top + 4 * row + 44
        printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"680\" height=\"%d\" viewBox=\"0 0 680 %d\" font-family=\"sans-serif\" font-size=\"13\" role=\"img\">\n", height, height
        printf "<title>Wall time of the same dd run bare, under eBPF, under ptrace and under strace</title>\n"
        printf "<rect width=\"680\" height=\"%d\" fill=\"#ffffff\"/>\n", height
        printf "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">dd bs=1 count=%s: %s reads and %s writes, timed in the VM</text>\n", bytes, bytes, bytes
        printf "<text x=\"10\" y=\"40\" fill=\"#4b5563\">Linux %s, QEMU %s; wall time of each step as the guest agent measured it, in ms</text>\n", kernel, toupper(accel)
        for (i = 1; i <= 4; i++) {
            v = ms[order[i]]
            y = top + (i - 1) * row
            w = v / max * width
            if (w < 2) w = 2
            added = (i == 1) ? "" : sprintf("  (+%d ms)", v - ms["bare"])
            printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", left - 8, y + 16, label[i]
            printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", left, y, w, bar, color[i]
            printf "<text x=\"%.1f\" y=\"%d\">%d ms%s</text>\n", left + w + 6, y + 16, v, added
        }
        ratio = (ms["ebpf"] - ms["bare"]) / (ms["ptrace"] - ms["bare"]) * 100
        printf "<text x=\"10\" y=\"%d\" fill=\"#4b5563\">eBPF added %.1f%% of what ptrace added, counting the time to load and attach the program.</text>\n", height - 14, ratio
        printf "</svg>\n"
    }' >"$svg.tmp"
mv "$svg.tmp" "$svg"
echo "wrote ${svg#"$repo"/} ($durations)" >&2
