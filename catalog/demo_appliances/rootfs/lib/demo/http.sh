# The tiers' HTTP server: one request per connection, read on stdin and answered on stdout.
#
# `nc -ll -e` runs lib/demo/handle-request for every connection (busybox httpd runs programs only
# under /cgi-bin/ and this build has no proxy directive, so it cannot take POST /records; there
# is no tcpsvd or inetd applet either).
#
#   GET  /            the page: the status chain and every record, oldest first
#   GET  /status.txt  the status line, which the next tier up fetches
#   GET  /records     every record, one a line (text/plain)
#   POST /records     adds a record: a text/plain body of one line
#
# The db keeps the records (records.sh). app and web check a new record too, then pass record
# requests to the tier below them (UPSTREAM_ROLE) and answer what it answered, so a POST to web
# or app is on the db's disk when it is answered, and every page after it lists it.
: "${UPSTREAM_TIMEOUT_SECONDS:=10}"
: "${BODY_TIMEOUT_SECONDS:=5}"
MAX_HEADER_LINES=64
CR=$(printf '\r')

http_reason() {
    case "$1" in
        200) echo "OK" ;;
        201) echo "Created" ;;
        400) echo "Bad Request" ;;
        404) echo "Not Found" ;;
        405) echo "Method Not Allowed" ;;
        411) echo "Length Required" ;;
        413) echo "Content Too Large" ;;
        415) echo "Unsupported Media Type" ;;
        431) echo "Request Header Fields Too Large" ;;
        502) echo "Bad Gateway" ;;
        503) echo "Service Unavailable" ;;
        507) echo "Insufficient Storage" ;;
        *) echo "Error" ;;
    esac
}

# $1: status; $2: content type; $3: file holding the body; $4: one more header line, or nothing.
respond() {
    printf 'HTTP/1.0 %s %s\r\n' "$1" "$(http_reason "$1")"
    printf 'Content-Type: %s\r\nContent-Length: %s\r\n' "$2" "$(file_size "$3")"
    # Records are text from anyone: no browser may guess another type for them.
    printf 'X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n'
    [ -z "$4" ] || printf '%s\r\n' "$4"
    printf '\r\n'
    [ "$REQUEST_METHOD" = HEAD ] || cat "$3"
}

# $1: status; $2: one line saying what happened; $3: as respond's $4.
respond_text() {
    printf '%s\n' "$2" >"$REQUEST_DIR/message.txt"
    respond "$1" "text/plain; charset=utf-8" "$REQUEST_DIR/message.txt" "$3"
}

# Sets HEADER_VALUE to what follows the colon of header line $1, without surrounding blanks.
header_value() {
    HEADER_VALUE=${1#*:}
    HEADER_VALUE=${HEADER_VALUE#"${HEADER_VALUE%%[! 	]*}"}
    HEADER_VALUE=${HEADER_VALUE%"${HEADER_VALUE##*[! 	]}"}
}

# Reads the request line and the headers; sets REQUEST_METHOD, REQUEST_PATH (without its query),
# CONTENT_LENGTH, CONTENT_TYPE and TRANSFER_ENCODING. Fails without a reason when the connection
# closed before a request (a port check), and refuses a malformed request.
read_request_head() {
    local line count=0
    REQUEST_METHOD='' REQUEST_PATH='' CONTENT_LENGTH='' CONTENT_TYPE='' TRANSFER_ENCODING='' REFUSED_STATUS=''
    IFS= read -r line || return 1
    line=${line%"$CR"}
    REQUEST_METHOD=${line%% *}
    REQUEST_PATH=${line#* }
    REQUEST_PATH=${REQUEST_PATH%% *}
    REQUEST_PATH=${REQUEST_PATH%%\?*}
    case "$REQUEST_METHOD" in
        '' | *[!A-Z]*) refuse 400 "malformed request line" || return 1 ;;
    esac
    case "$REQUEST_PATH" in
        /*) ;;
        *) refuse 400 "malformed request line" || return 1 ;;
    esac
    while IFS= read -r line; do
        line=${line%"$CR"}
        [ -n "$line" ] || return 0
        count=$((count + 1))
        [ "$count" -le "$MAX_HEADER_LINES" ] || refuse 431 "too many header lines" || return 1
        header_value "$line"
        case "$line" in
            [Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Ll][Ee][Nn][Gg][Tt][Hh]:*) CONTENT_LENGTH=$HEADER_VALUE ;;
            [Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Tt][Yy][Pp][Ee]:*) CONTENT_TYPE=$HEADER_VALUE ;;
            [Tt][Rr][Aa][Nn][Ss][Ff][Ee][Rr]-[Ee][Nn][Cc][Oo][Dd][Ii][Nn][Gg]:*) TRANSFER_ENCODING=$HEADER_VALUE ;;
        esac
    done
    refuse 400 "the request ended inside its headers"
}

# Reads the body of a POST into $1 and the record it holds into $2 (see record_from_body).
read_record() {
    local media
    media=${CONTENT_TYPE%%;*}
    media=${media%"${media##*[! 	]}"}
    case "$media" in
        [Tt][Ee][Xx][Tt]/[Pp][Ll][Aa][Ii][Nn]) ;;
        *) refuse 415 "send the record as text/plain" || return 1 ;;
    esac
    [ -z "$TRANSFER_ENCODING" ] || refuse 411 "send the record with a Content-Length, not chunked" || return 1
    is_number "$CONTENT_LENGTH" || refuse 411 "send the record with a Content-Length" || return 1
    # Refused before reading, so no client can make the guest read a large body. A record may come
    # with its newline (LF or CRLF); the digits are counted first, so test never sees a huge number.
    [ "${#CONTENT_LENGTH}" -le 6 ] && [ "$CONTENT_LENGTH" -le $((RECORD_MAX_BYTES + 2)) ] ||
        refuse 413 "a record is at most $RECORD_MAX_BYTES bytes" || return 1
    timeout "$BODY_TIMEOUT_SECONDS" head -c "$CONTENT_LENGTH" >"$1"
    [ "$(file_size "$1")" -eq "$CONTENT_LENGTH" ] || refuse 400 "the body is shorter than its Content-Length" || return 1
    record_from_body "$1" "$2"
}

# $1 method, $2 address:port, $3 path, $4 a file to send as a text/plain body (or nothing):
# the raw response, on stdout.
http_call() {
    {
        printf '%s %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n' "$1" "$3" "$2"
        if [ -n "$4" ]; then
            printf 'Content-Type: text/plain\r\nContent-Length: %s\r\n\r\n' "$(file_size "$4")"
            cat "$4"
        else
            printf '\r\n'
        fi
    } | timeout "$UPSTREAM_TIMEOUT_SECONDS" nc "${2%:*}" "${2##*:}" 2>/dev/null
}

# $1 method, $2 path, $3 body file (or nothing), to the tier below this one. Sets UPSTREAM_STATUS and
# writes the answer's body to $REQUEST_DIR/upstream.txt; refuses when that tier cannot be asked.
upstream_request() {
    local address response="$REQUEST_DIR/upstream.response"
    address=$(peer_address "$UPSTREAM_ROLE") || refuse 503 "no $UPSTREAM_ROLE tier in this stack" || return 1
    http_call "$1" "$address:$UPSTREAM_PORT" "$2" "$3" >"$response"
    UPSTREAM_STATUS=$(head -n 1 "$response" | cut -d ' ' -f 2)
    case "$UPSTREAM_STATUS" in
        [1-5][0-9][0-9]) ;;
        *) refuse 502 "the $UPSTREAM_ROLE tier at $address:$UPSTREAM_PORT did not answer" || return 1 ;;
    esac
    # Everything after the first empty line (our servers send no CR in a body).
    tr -d '\r' <"$response" | sed '1,/^$/d' >"$REQUEST_DIR/upstream.txt"
}

# Every record, one a line, into $1: the db's own, or what the tier below answers.
fetch_records() {
    if [ -z "$UPSTREAM_ROLE" ]; then
        record_log_list >"$1"
        return
    fi
    upstream_request GET /records || return 1
    if [ "$UPSTREAM_STATUS" != 200 ]; then
        refuse 502 "the $UPSTREAM_ROLE tier answered $UPSTREAM_STATUS: $(head -n 1 "$REQUEST_DIR/upstream.txt")"
        return 1
    fi
    cp "$REQUEST_DIR/upstream.txt" "$1"
}

# The page's records, as HTML: every one escaped, in order.
records_section() {
    local records="$REQUEST_DIR/records.txt"
    echo "<h2>Records</h2>"
    if ! fetch_records "$records"; then
        printf '<p id="records">No records to show: %s</p>\n' "$(printf '%s' "$REFUSED_REASON" | html_escape)"
    elif [ ! -s "$records" ]; then
        echo '<p id="records">No records yet.</p>'
    else
        echo '<ol id="records">'
        html_escape <"$records" | sed -e 's|^|<li>|' -e 's|$|</li>|'
        echo '</ol>'
    fi
    echo "<p>POST /records with a text/plain body of one line adds a record.</p>"
}

serve_page() {
    records_section >"$REQUEST_DIR/records.html"
    render_page "$(cat "$WWW/status.txt" 2>/dev/null)" "$(cat "$WWW/refresh.txt" 2>/dev/null)" \
        "$REQUEST_DIR/records.html" >"$REQUEST_DIR/page.html"
    respond 200 "text/html; charset=utf-8" "$REQUEST_DIR/page.html"
}

serve_status() {
    cat "$WWW/status.txt" >"$REQUEST_DIR/status.txt" 2>/dev/null
    respond 200 "text/plain; charset=utf-8" "$REQUEST_DIR/status.txt"
}

serve_records() {
    if fetch_records "$REQUEST_DIR/records.txt"; then
        respond 200 "text/plain; charset=utf-8" "$REQUEST_DIR/records.txt"
    else
        respond_text "$REFUSED_STATUS" "$REFUSED_REASON"
    fi
}

take_record() {
    local body="$REQUEST_DIR/body" record="$REQUEST_DIR/record"
    if ! read_record "$body" "$record"; then
        respond_text "$REFUSED_STATUS" "$REFUSED_REASON"
    elif [ -z "$UPSTREAM_ROLE" ]; then
        if record_log_append "$record"; then
            respond_text 201 "record saved"
        else
            respond_text "$REFUSED_STATUS" "$REFUSED_REASON"
        fi
    elif upstream_request POST /records "$record"; then
        respond "$UPSTREAM_STATUS" "text/plain; charset=utf-8" "$REQUEST_DIR/upstream.txt"
    else
        respond_text "$REFUSED_STATUS" "$REFUSED_REASON"
    fi
}

# $1: the methods a path allows, space-separated. Answers 405 for any other.
allow() {
    case " $1 " in
        *" $REQUEST_METHOD "*) return 0 ;;
    esac
    respond_text 405 "$REQUEST_METHOD is not allowed here" "Allow: $(echo "$1" | sed 's/ /, /g')"
    return 1
}

route_request() {
    case "$REQUEST_PATH" in
        / | /index.html) if allow "GET HEAD"; then serve_page; fi ;;
        /status.txt) if allow "GET HEAD"; then serve_status; fi ;;
        /records)
            if ! allow "GET HEAD POST"; then
                return 0
            elif [ "$REQUEST_METHOD" = POST ]; then
                take_record
            else
                serve_records
            fi
            ;;
        *) respond_text 404 "no such page (GET / or /status.txt or /records, POST /records)" ;;
    esac
}

# One request from stdin, answered on stdout; its scratch files go with it.
handle_request() {
    REQUEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/request.XXXXXX") || return 1
    trap 'rm -rf "$REQUEST_DIR"' EXIT
    trap 'exit 1' TERM HUP PIPE
    if read_request_head; then
        route_request
    elif [ -n "$REFUSED_STATUS" ]; then
        respond_text "$REFUSED_STATUS" "$REFUSED_REASON"
    fi
}
