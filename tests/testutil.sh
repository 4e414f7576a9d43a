# testutil.sh — helpers shared by the end-to-end scripts (tests/e2e_*.sh), sourced, never run by
# itself (the name keeps it out of ctest's e2e_*.sh glob).
#
# Contract: e2e_init takes the script's arguments (PIXDIFF SOURCE_DIR), sets PD (absolute path of
# the binary) and SRC, and makes a temporary directory T, removed on exit, the working directory.
# ok / bad / expect_error keep the tally that the script prints last with e2e_finish ("N passed,
# M failed"; its exit status fails the ctest when anything failed). The run helpers check what
# every resumable long run (train, distill sid) promises: kill_resume kills a run with SIGKILL
# again and again and resumes it; expect_no_tmp checks that no temporary checkpoint files were
# left; expect_sigint checks that Ctrl-C writes a checkpoint and exits non-zero.

pass=0
fail=0

# e2e_init SCRIPT "$@"
e2e_init() {
    local name=$1
    PD=${2:?usage: $name PIXDIFF SOURCE_DIR}
    SRC=${3:?usage: $name PIXDIFF SOURCE_DIR}
    PD=$(cd "$(dirname "$PD")" && pwd)/$(basename "$PD")
    T=$(mktemp -d "${TMPDIR:-/tmp}/pixdiff-${name%.sh}.XXXXXX")
    trap 'rm -rf "$T"' EXIT
    cd "$T" || exit 1
}

ok() { pass=$((pass + 1)); echo "ok   $1"; }
# bad NAME [LOG]: a failure, with the tail of LOG.
bad() {
    fail=$((fail + 1))
    echo "FAIL $1"
    if [ -n "${2:-}" ] && [ -f "$2" ]; then sed 's/^/     | /' "$2" | tail -n 8; fi
}
# expect_error NAME PATTERN CMD...: must fail with a stderr line matching PATTERN.
expect_error() {
    local name=$1 pat=$2
    shift 2
    if "$@" >"$T/err.out" 2>&1; then bad "$name (succeeded)" "$T/err.out"
    elif grep -Eq "$pat" "$T/err.out"; then ok "$name"
    else bad "$name (message)" "$T/err.out"; fi
}

# kill_resume DONE CKPT TRIES DELAY_FN LOG CMD...: starts CMD (with --resume once CKPT exists: a
# kill before the first checkpoint leaves nothing to resume, so it starts afresh then) and
# SIGKILLs it after DELAY_FN N has set $DELAY (seconds, start N), until the file DONE exists or
# TRIES starts were made; then runs CMD to its end. Output goes to LOG; $kills counts the kills.
kill_resume() {
    local done=$1 ckpt=$2 tries=$3 delay_fn=$4 log=$5 i r pid
    shift 5
    kills=0
    for i in $(seq 1 "$tries"); do
        [ -f "$done" ] && break
        r=; [ -f "$ckpt" ] && r=--resume
        "$@" $r >"$log" 2>&1 &
        pid=$!
        "$delay_fn" "$i"
        sleep "$DELAY"
        kill -9 $pid 2>/dev/null && kills=$((kills + 1))
        wait $pid 2>/dev/null
    done
    if [ ! -f "$done" ]; then
        r=; [ -f "$ckpt" ] && r=--resume
        "$@" $r >"$log" 2>&1
    fi
}

# expect_no_tmp DIR: no "<checkpoint>.tmp.<pid>" left in DIR.
expect_no_tmp() {
    if ls "$1" | grep -q '\.tmp\.'; then bad "stale temporary files left in the run directory"
    else ok "no temporary files left behind"; fi
}

# expect_sigint CKPT LOG CMD...: CMD, sent SIGINT after 1.5 s, exits non-zero saying
# "interrupted at" and leaves CKPT.
expect_sigint() {
    local ckpt=$1 log=$2 pid rc
    shift 2
    "$@" >"$log" 2>&1 &
    pid=$!
    sleep 1.5
    kill -INT $pid
    wait $pid
    rc=$?
    if [ $rc -ne 0 ] && grep -q "interrupted at" "$log" && [ -f "$ckpt" ]; then
        ok "SIGINT saves a checkpoint and exits non-zero"
    else bad "SIGINT (exit $rc)" "$log"; fi
}

e2e_finish() {
    echo "$pass passed, $fail failed"
    [ $fail -eq 0 ]
}
