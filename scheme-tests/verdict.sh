# Sourced by the run-<impl>.sh runners: one pass/fail rule for the three Schemes.
# Runners differ in exit codes, so the verdict comes from the suite's printed count, which
# must be the last line, "N passed, 0 failed"; a non-zero exit after it fails as well.
#   verdict NAME OUTPUT-FILE EXIT-STATUS
verdict() {
    last=$(grep -v '^[[:space:]]*$' "$2" | tail -n 1)
    if echo "$last" | grep -Eq '^[0-9]+ passed, 0 failed$'; then
        [ "$3" -eq 0 ] && return 0
        echo "$1: FAILED: exit status $3 after the summary" >&2
    elif echo "$last" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$'; then
        echo "$1: FAILED: $last" >&2
    else
        echo "$1: FAILED: the suite did not finish (exit status $3)" >&2
    fi
    return 1
}
