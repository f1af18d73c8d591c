# What the appliance serves: /status.txt, its status in plain text (what peers fetch), and
# /index.html, the page people see, which carries the "<identifier> appliance" marker and the
# same status. Both are written whole and then renamed, so no reader ever sees half a file. The
# probe's httpd serves them as they are; a tier's own server (http.sh) renders its page on each
# request, from the same status (and refresh.txt, how often a browser should reload it) and the
# records as they are at that moment.
: "${WWW:=/www}"
# Browsers reload a page that is still waiting for something this often.
WAITING_REFRESH_SECONDS=2

html_escape() {
    sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g' -e "s/'/\&#39;/g"
}

# Who this guest is, in one sentence.
identity() {
    if [ -n "$PORTAL_INSTANCE" ]; then
        echo "Instance $PORTAL_INSTANCE of stack $PORTAL_STACK, tier $PORTAL_TIER, address $PORTAL_ADDRESS/$PORTAL_PREFIX."
    else
        echo "No config drive: serving standalone."
    fi
}

# $1: the status (one or more lines); $2: seconds after which a browser reloads (empty: never);
# $3: a file holding more of the page (HTML), or nothing.
render_page() {
    local refresh=
    [ -n "$2" ] && refresh="<meta http-equiv=\"refresh\" content=\"$2\">"
    cat <<EOF
<!DOCTYPE html>
<html>
<head><title>$APPLIANCE</title>$refresh</head>
<body>
<h1>$APPLIANCE appliance</h1>
<p>Role: $ROLE. Version: $VERSION.</p>
<p>$(identity | html_escape)</p>
<pre id="status">$(printf '%s\n' "$1" | html_escape)</pre>
EOF
    [ -z "$3" ] || cat "$3"
    printf '</body>\n</html>\n'
}

write_whole() {
    cat >"$1.tmp" && mv "$1.tmp" "$1"
}

# $1: the status; $2: reload seconds for browsers, as render_page. Changes go to the console too.
publish() {
    printf '%s\n' "$1" | write_whole "$WWW/status.txt"
    printf '%s\n' "$2" | write_whole "$WWW/refresh.txt"
    render_page "$1" "$2" | write_whole "$WWW/index.html"
    if [ "$1" != "$PUBLISHED" ]; then
        PUBLISHED=$1
        log "status: $1"
    fi
}
