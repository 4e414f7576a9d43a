# testutil.sh — helpers shared by the end-to-end scripts (tests/e2e_*.sh), sourced, never run by
# itself (the name keeps it out of ctest's e2e_*.sh glob).
#
# Contract: e2e_init takes the script's arguments (PIXDIFF SOURCE_DIR), sets PD (absolute path of
# the binary) and SRC, and makes a temporary directory T, removed on exit, the working directory.
# ok / bad / expect_error / has / hasnt / same keep the tally that the script prints last with
# e2e_finish ("N passed, M failed"; its exit status fails the ctest when anything failed); run
# and run_to count a command's success. The
# run helpers check what every resumable long run (train, distill sid) promises: kill_resume
# kills a run with SIGKILL again and again and resumes it; expect_no_tmp checks that no temporary
# checkpoint files were left; expect_sigint checks that Ctrl-C writes a checkpoint and exits
# non-zero. fake_split writes a small fake Fashion-MNIST split for the tests that run eval.

pass=0
fail=0

# need_fashion_mnist SPLIT: ends the script as passed, saying so, when Fashion-MNIST's SPLIT
# (train or t10k) images are not installed.
need_fashion_mnist() {
    if [ ! -f "/usr/share/datasets/fashion-mnist/$1-images-idx3-ubyte.gz" ]; then
        echo "skipped: Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)"
        exit 0
    fi
}

# e2e_init SCRIPT "$@"
e2e_init() {
    local name=$1
    PD=${2:?usage: $name PIXDIFF SOURCE_DIR}
    SRC=${3:?usage: $name PIXDIFF SOURCE_DIR}
    PD=$(cd "$(dirname "$PD")" && pwd)/$(basename "$PD")
    SRC=$(cd "$SRC" && pwd)
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
# expect_error NAME PATTERN CMD...: what every bad input must give (README "Bad input"): CMD
# exits non-zero (exactly $expect_rc when the script sets it), prints exactly one line on stderr,
# matching PATTERN (grep -E), and writes no file or folder under the working directory (a
# temporary file made and removed again is fine; one left behind is not).
expect_rc=
expect_error() {
    local name=$1 pat=$2 rc=0 lines written
    shift 2
    mkdir -p "$T/.expect"
    touch "$T/.expect/mark"
    find . -type d | sort >"$T/.expect/dirs"
    "$@" >"$T/.expect/out" 2>"$T/.expect/err" || rc=$?
    lines=$(wc -l <"$T/.expect/err")
    written=$({ find . -path ./.expect -prune -o -type f -newer "$T/.expect/mark" -print
                find . -type d | sort | comm -13 "$T/.expect/dirs" -; } | tr '\n' ' ')
    if [ "$rc" -eq 0 ]; then bad "$name: exit 0, expected an error" "$T/.expect/out"
    elif [ -n "$expect_rc" ] && [ "$rc" -ne "$expect_rc" ]; then bad "$name: exit $rc, expected $expect_rc" "$T/.expect/err"
    elif [ "$lines" -ne 1 ]; then bad "$name: $lines lines on stderr, expected 1" "$T/.expect/err"
    elif ! grep -qE -- "$pat" "$T/.expect/err"; then bad "$name: stderr does not match /$pat/" "$T/.expect/err"
    elif [ -n "$written" ]; then bad "$name: wrote $written" "$T/.expect/err"
    else ok "$name (exit $rc: $(cat "$T/.expect/err"))"; fi
}

# has NAME FILE PATTERN: FILE contains PATTERN (grep -E); hasnt: it does not.
has() { if grep -qE -- "$3" "$2"; then ok "$1"; else bad "$1: no /$3/ in $2" "$2"; fi; }
hasnt() { if grep -qE -- "$3" "$2"; then bad "$1: /$3/ in $2" "$2"; else ok "$1"; fi; }
# same NAME FILE1 FILE2: byte-identical, non-empty files.
same() { if [ -s "$2" ] && cmp -s "$2" "$3"; then ok "$1"; else bad "$1: $2 and $3 differ"; fi; }
is_png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }
# run NAME CMD...: ok when CMD succeeds, else a failure with the tail of its output ($T/run.out).
run() {
    local name=$1
    shift
    if "$@" >"$T/run.out" 2>&1; then ok "$name"; else bad "$name (exit $?)" "$T/run.out"; fi
}
# run_to NAME OUT CMD...: the same with CMD's stdout kept in OUT and its stderr in OUT.err.
run_to() {
    local name=$1 out=$2
    shift 2
    if "$@" >"$out" 2>"$out.err"; then ok "$name"; else bad "$name (exit $?)" "$out.err"; fi
}
# json_field FILE KEY: the value of "KEY": in a one-line JSON object.
json_field() { grep -oE "\"$2\": [^,}]+" "$1" | head -n 1 | cut -d' ' -f2-; }

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

# expect_sigint CKPT LOG CMD...: CMD, sent SIGINT once it logs its start, exits non-zero saying
# "interrupted at" and leaves CKPT.
expect_sigint() {
    local ckpt=$1 log=$2 pid rc
    shift 2
    "$@" >"$log" 2>&1 &
    pid=$!
    # Interrupt once the run has started (its first log line), however loaded the machine is.
    for _ in $(seq 600); do grep -Eq "new (SiD )?run|resumed" "$log" && break; sleep 0.1; done
    sleep 0.5
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

# expect_tty_progress NAME RATE PATTERN CMD...: CMD run on a terminal (script(1)) draws progress
# lines (those matching PATTERN, with an ETA) of at most 80 columns, and RATE ("img/s") appears.
# Callers check that script(1) exists first.
expect_tty_progress() {
    local name=$1 rate=$2 pat=$3 longest log
    shift 3
    log="tty_${name// /_}.log"
    script -qec "$*" /dev/null >"$log" 2>&1 || true   # (callers may run under set -e)
    longest=$(tr '\r' '\n' <"$log" | sed 's/\x1b\[K//g' | { grep -E "$pat" || true; } | { grep 'ETA ' || true; } |
              awk '{ if (length > m) m = length } END { print m + 0 }')
    if [ "$longest" -gt 0 ] && [ "$longest" -le 80 ] && grep -q "$rate" "$log"; then
        ok "$name: progress lines fit 80 columns ($longest) and say $rate"
    else bad "$name: progress line of $longest columns (or no $rate)" "$log"; fi
}

# fake_split DIR SPLIT N: a fake Fashion-MNIST split, N random 28x28 images and labels i mod 10
# as gzip IDX files (the data `pixdiff eval` measures against, in seconds).
fake_split() {
    local dir=$1 split=$2 n=$3 hex
    mkdir -p "$dir"
    hex=$(printf '%08x' "$n")
    { printf '\x00\x00\x08\x03'; printf "\\x${hex:0:2}\\x${hex:2:2}\\x${hex:4:2}\\x${hex:6:2}"
      printf '\x00\x00\x00\x1c\x00\x00\x00\x1c'; head -c $((n * 784)) /dev/urandom; } |
        gzip >"$dir/$split-images-idx3-ubyte.gz"
    { printf '\x00\x00\x08\x01'; printf "\\x${hex:0:2}\\x${hex:2:2}\\x${hex:4:2}\\x${hex:6:2}"
      for ((i = 0; i < n; i++)); do printf "\\x0$((i % 10))"; done; } |
        gzip >"$dir/$split-labels-idx1-ubyte.gz"
}
