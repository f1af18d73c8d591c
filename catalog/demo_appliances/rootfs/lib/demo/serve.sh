# What each tier says, kept fresh by one background loop, and the server that answers for it.
#
#   db:  db <instance>: <its "record" setting, or a default line>
#   app: app <instance> | <what db says>        (fetched from db's /status.txt)
#   web: web <instance> | <what app says>       (fetched from app's /status.txt)
#
# so one GET on web shows every tier's instance name and the db's setting. Each tier first waits
# (up to WAIT_CAP_SECONDS) for the address:port pairs in PORTAL_WAIT_FOR, then rewrites its status
# every REFRESH_SECONDS: it is complete once its peers are up and says what it waits for until
# then. The records people add are kept apart: on the db's disk (records.sh), listed on every
# tier's page as they are at each request (http.sh).

# Where the guest's scripts are (the server runs handle-request from there).
: "${DEMO_LIB:=/lib/demo}"
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

# The probe serves its files with httpd; a tier runs its own server, which also takes records.
start_server() {
    if [ "$ROLE" = probe ]; then
        httpd -p "$PORT" -h "$WWW"
        return
    fi
    serve_requests &
    wait_until_listening
}

# The tier's HTTP server (http.sh): nc runs a handler per connection, several at once. Restarted if
# it ever stops, so the tier keeps answering.
serve_requests() {
    while :; do
        nc -ll -p "$PORT" -e "$DEMO_LIB/handle-request"
        log "the server on port $PORT stopped: restarting it"
        sleep 1
    done
}

# Whether something listens on the tier's port within about two seconds.
wait_until_listening() {
    local tries=0
    until can_connect "127.0.0.1:$PORT"; do
        tries=$((tries + 1))
        [ "$tries" -lt 40 ] || return 1
        sleep 0.05
    done
}
