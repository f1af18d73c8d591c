# What each tier says, kept fresh by one background loop.
#
#   db:  db <instance>: <record setting, or the default record>
#   app: app <instance> | <what db says>        (fetched from db's /status.txt)
#   web: web <instance> | <what app says>       (fetched from app's /status.txt)
#
# so one GET on web shows every tier's instance name and the db's record. Each tier first waits
# (up to WAIT_CAP_SECONDS) for the address:port pairs in PORTAL_WAIT_FOR, then rewrites its page
# every REFRESH_SECONDS: the page is complete once its peers are up and says what it waits for
# until then.
: "${REFRESH_SECONDS:=1}"
: "${WAIT_CAP_SECONDS:=300}"
DEFAULT_RECORD="hello from the demo database"

uptime_seconds() {
    cut -d. -f1 /proc/uptime
}

# Whether a TCP connection to ADDRESS:PORT opens. nc runs `true` once connected, so it succeeds
# only then; a refusal, or no answer within 2 s (a dropped SYN), makes it fail.
can_connect() {
    nc -w 2 "${1%:*}" "${1##*:}" -e true >/dev/null 2>&1
}

# The first line of a peer's /status.txt, or nothing. This busybox's wget has no working -T.
fetch_status() {
    timeout 3 wget -q -O - "http://$1/status.txt" 2>/dev/null | head -n 1
}

# The address of the first instance of tier $1, as portal.env names it (PORTAL_PEER_<TIER>).
peer_address() {
    local name address
    # Upper case, runs of anything else as one "_", as the portal spells the variable; the result
    # holds only [A-Z0-9_], so eval reads a variable and nothing else.
    name=$(printf '%s' "$1" | tr 'a-z' 'A-Z' | tr -cs 'A-Z0-9' '_' | sed -e 's/^_*//' -e 's/_*$//')
    eval "address=\${PORTAL_PEER_$name:-}"
    [ -n "$address" ] && echo "$address"
}

# The tier's status line; fails while it still waits for its upstream tier.
tier_status() {
    local upstream said
    if [ -z "$UPSTREAM_ROLE" ]; then
        echo "$ROLE $NAME: $(printf '%s' "${PORTAL_SETTING_RECORD:-$DEFAULT_RECORD}" | tr '\n' ' ')"
        return 0
    fi
    if ! upstream=$(peer_address "$UPSTREAM_ROLE"); then
        echo "$ROLE $NAME | no $UPSTREAM_ROLE tier in this stack"
        return 0
    fi
    said=$(fetch_status "$upstream:$UPSTREAM_PORT")
    if [ -n "$said" ]; then
        echo "$ROLE $NAME | $said"
    else
        echo "$ROLE $NAME | waiting for $UPSTREAM_ROLE at $upstream:$UPSTREAM_PORT"
        return 1
    fi
}

# Publish the tier's status; browsers reload the page while it is incomplete.
publish_status() {
    local status
    if status=$(tier_status); then
        publish "$status"
    else
        publish "$status" "$WAITING_REFRESH_SECONDS"
    fi
}

# Until every PORTAL_WAIT_FOR target answers (or the cap passes), say which ones do not yet.
wait_for_peers() {
    local deadline target pending
    deadline=$(($(uptime_seconds) + WAIT_CAP_SECONDS))
    while :; do
        pending=
        for target in $PORTAL_WAIT_FOR; do
            can_connect "$target" || pending="$pending $target"
        done
        [ -z "$pending" ] && return 0
        publish "$ROLE $NAME | waiting for$pending" "$WAITING_REFRESH_SECONDS"
        if [ "$(uptime_seconds)" -ge "$deadline" ]; then
            log "gave up waiting for$pending after ${WAIT_CAP_SECONDS}s"
            return 1
        fi
        sleep 1
    done
}

# The page httpd serves from its first request on.
publish_first_page() {
    NAME=${PORTAL_INSTANCE:-$APPLIANCE}
    if [ -n "$PORTAL_INSTANCE" ]; then
        publish "$ROLE $NAME | starting" "$WAITING_REFRESH_SECONDS"
    elif [ "$ROLE" = probe ]; then
        publish "no config drive, so no targets"
    else
        publish_status
    fi
}

# Without a config drive there are no peers to ask: the first page stays.
serve_forever() {
    [ -n "$PORTAL_INSTANCE" ] || return 0
    wait_for_peers
    while :; do
        if [ "$ROLE" = probe ]; then
            probe_round
        else
            publish_status
        fi
        sleep "$REFRESH_SECONDS"
    done
}
