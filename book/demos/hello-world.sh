# Guest half of the Hello World demo; book/outputs.sh prepends the unpacked
# lab binary (/tmp/hello-world) and runs the result with `labctl run`.
# Usage: hello-world.sh trace|prog-show|xlated|jited
what=${1:?what to show}

# The files exist before the loader starts: the redirections below happen
# in the background child, and the loop must not read a file that is not
# there yet.
: >/tmp/hello.out
: >/tmp/hello.err
/tmp/hello-world >/tmp/hello.out 2>/tmp/hello.err &
loader=$!
tries=0
until grep -q Attached /tmp/hello.err; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ] || ! kill -0 "$loader" 2>/dev/null; then
        echo "hello-world did not attach:" >&2
        cat /tmp/hello.err >&2
        exit 1
    fi
    sleep 0.1
done

case "$what" in
trace)
    # Two programs started while the kprobe is attached.
    /bin/uname -r >/dev/null
    /bin/hostname >/dev/null
    sleep 0.5
    # SIGTERM, not SIGINT: a non-interactive shell starts background jobs
    # with SIGINT ignored.
    kill -TERM "$loader"
    wait "$loader" 2>/dev/null || true
    cat /tmp/hello.err /tmp/hello.out
    ;;
prog-show)
    bpftool prog show name hello
    ;;
xlated)
    bpftool prog dump xlated name hello
    ;;
jited)
    status=0
    bpftool prog dump jited name hello || status=$?
    kill -TERM "$loader"
    exit "$status"
    ;;
*)
    kill -TERM "$loader"
    echo "unknown demo part: $what" >&2
    exit 2
    ;;
esac
kill -TERM "$loader" 2>/dev/null || true
