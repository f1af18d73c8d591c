# The test-only probe: proves from inside a guest what it can and cannot connect to.
#
# PORTAL_SETTING_TARGETS lists address:port pairs (a tier name may stand for an address: db:5432
# means the first db instance of this stack). Each round tries a TCP connection to every target
# and then serves, one a line:
#
#   target 10.0.2.2:34567 blocked
#   target 10.240.0.10:5432 reachable
#   round 3 done
#
# "blocked" covers a refused connection and one that got no answer within 2 s.
PROBE_ROUND=0

# One target's line.
probe_target() {
    local host port address
    host=${1%:*}
    port=${1##*:}
    case "$port" in
        '' | *[!0-9]*)
            echo "target $1 invalid"
            return
            ;;
    esac
    case "$host" in
        '' | *[!0-9.]*) address=$(peer_address "$host") ;;
        *) address=$host ;;
    esac
    if [ -z "$address" ]; then
        echo "target $1 unresolved"
    elif can_connect "$address:$port"; then
        echo "target $address:$port reachable"
    else
        echo "target $address:$port blocked"
    fi
}

probe_round() {
    local report target
    PROBE_ROUND=$((PROBE_ROUND + 1))
    report=
    for target in $PORTAL_SETTING_TARGETS; do
        report="$report$(probe_target "$target")
"
    done
    [ -z "$PORTAL_SETTING_TARGETS" ] && report="no targets: set the probe's targets setting
"
    publish "${report}round $PROBE_ROUND done" "$WAITING_REFRESH_SECONDS"
}
