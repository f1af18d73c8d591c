# Records: what a record may be (every tier checks), and the db tier's record log on its boot disk.
#
# The log lives in raw space after the boot disk's FAT filesystem, at the byte offset the kernel
# command line names (demo.record_log=OFFSET). At OFFSET, one header sector:
#
#   DEMO-RECORD-LOG 1
#   length 0000000042
#
# (zero-padded), then at OFFSET+RECORD_LOG_HEADER_BYTES the text: every record and its newline, oldest
# first. An append writes the text and syncs it, then writes the header with the new length and
# syncs that: the header is the commit, so a crash or power cut in between loses at most the record
# being written, never an earlier one. A header without the magic line is a log never written to
# (a fresh disk reads as zeros). Appends take a lock (mkdir is atomic; there is no flock here).
# The device, offset and lock are variables so that tests can use a plain file.
: "${RECORD_DEVICE:=/dev/vda}"
: "${RECORD_LOCK:=/tmp/record-log.lock}"
: "${KERNEL_CMDLINE_FILE:=/proc/cmdline}"
# Caps, as the build writes them to /etc/appliance.env.
: "${RECORD_MAX_BYTES:=500}"
: "${RECORD_LOG_MAX_BYTES:=1048576}"
: "${RECORD_LOG_HEADER_BYTES:=512}"
RECORD_LOG_MAGIC="DEMO-RECORD-LOG 1"
# How long an append waits for another one to finish (tenths of a second).
: "${RECORD_LOCK_TRIES:=100}"

# Why a record or an append was refused: the HTTP status to answer and a sentence.
refuse() {
    REFUSED_STATUS=$1
    REFUSED_REASON=$2
    return 1
}

is_number() {
    case "$1" in
        '' | *[!0-9]*) return 1 ;;
    esac
}

file_size() {
    local size
    size=$(wc -c <"$1") || return 1
    echo $((size))
}

# How many newlines standard input holds.
count_newlines() {
    local count
    count=$(tr -dc '\n' | wc -c)
    echo $((count))
}

# The last byte of a file as two hex digits (nothing for an empty file).
last_byte() {
    tail -c 1 "$1" | od -An -tx1 | tr -d ' \n'
}

# $1: a request body. Writes the record it holds to $2: the body without one trailing newline (LF or
# CRLF). A record is one line, not empty, of at most RECORD_MAX_BYTES bytes, and holds no control
# characters but tab. Refuses (see refuse) anything else.
record_from_body() {
    local size printable
    size=$(file_size "$1") || return 1
    cp "$1" "$2"
    if [ "$(last_byte "$2")" = 0a ]; then
        size=$((size - 1))
        head -c "$size" "$1" >"$2"
        if [ "$(last_byte "$2")" = 0d ]; then
            size=$((size - 1))
            head -c "$size" "$1" >"$2"
        fi
    fi
    [ "$size" -gt 0 ] || refuse 400 "the record is empty" || return 1
    [ "$size" -le "$RECORD_MAX_BYTES" ] || refuse 413 "a record is at most $RECORD_MAX_BYTES bytes" || return 1
    [ "$(count_newlines <"$2")" -eq 0 ] || refuse 400 "a record is one line" || return 1
    printable=$(tr -d '\000-\010\012-\037\177' <"$2" | wc -c)
    [ $((printable)) -eq "$size" ] || refuse 400 "a record holds no control characters but tab" || return 1
}

# Where the log starts on RECORD_DEVICE: sets RECORD_LOG_OFFSET (bytes) from the kernel command line,
# unless it is set already.
record_log_open() {
    local word
    if [ -z "$RECORD_LOG_OFFSET" ]; then
        for word in $(cat "$KERNEL_CMDLINE_FILE" 2>/dev/null); do
            case "$word" in
                demo.record_log=*) RECORD_LOG_OFFSET=${word#*=} ;;
            esac
        done
    fi
    is_number "$RECORD_LOG_OFFSET" || refuse 503 "this disk has no record log" || return 1
    [ -e "$RECORD_DEVICE" ] || refuse 503 "the record log's disk $RECORD_DEVICE is missing" || return 1
}

# Sets RECORD_LOG_LENGTH, the length of the log's text in bytes (0 for a log never written to).
record_log_read_length() {
    local header length
    record_log_open || return 1
    header=$(
        dd if="$RECORD_DEVICE" bs="$RECORD_LOG_HEADER_BYTES" count=1 skip="$RECORD_LOG_OFFSET" iflag=skip_bytes \
            status=none | tr -d '\000' | head -n 2 | tr '\n' ' '
    )
    case "$header" in
        "$RECORD_LOG_MAGIC "*) length=${header#"$RECORD_LOG_MAGIC "} ;;
        *)
            RECORD_LOG_LENGTH=0
            return 0
            ;;
    esac
    case "$length" in
        "length "*" ")
            length=${length#"length "}
            length=${length%" "}
            ;;
        *) length=not-a-length ;;
    esac
    # Leading zeros would make shell arithmetic read the number as octal.
    length=${length#"${length%%[!0]*}"}
    # A header that names no length the log can have is damage: never write over it. (A number too
    # large for test makes it fail, which refuses too.)
    if ! is_number "${length:-0}" || ! [ "${length:-0}" -le "$RECORD_LOG_MAX_BYTES" ] 2>/dev/null; then
        refuse 503 "the record log's header is damaged"
        return 1
    fi
    RECORD_LOG_LENGTH=${length:-0}
}

# Every record, one a line, oldest first.
record_log_list() {
    record_log_read_length || return 1
    [ "$RECORD_LOG_LENGTH" -gt 0 ] || return 0
    dd if="$RECORD_DEVICE" bs=65536 skip=$((RECORD_LOG_OFFSET + RECORD_LOG_HEADER_BYTES)) count="$RECORD_LOG_LENGTH" \
        iflag=skip_bytes,count_bytes status=none
}

record_log_lock() {
    local tries=0
    until mkdir "$RECORD_LOCK" 2>/dev/null; do
        tries=$((tries + 1))
        [ "$tries" -lt "$RECORD_LOCK_TRIES" ] || return 1
        sleep 0.1
    done
}

record_log_unlock() {
    rmdir "$RECORD_LOCK"
}

# Append the record in file $1 (checked by record_from_body). The append runs in a process of its own
# that ignores the signals a request's time limit or a closed connection send its handler, so an
# append once started always finishes and always unlocks; it prints why it failed, if it did.
record_log_append() {
    local failure
    record_log_open || return 1
    failure=$(
        trap '' TERM HUP INT PIPE
        if ! record_log_lock; then
            echo "503 the record log is busy: try again"
            exit 1
        fi
        record_log_write "$1"
        status=$?
        record_log_unlock
        exit "$status"
    ) && return 0
    refuse "${failure%% *}" "${failure#* }"
    is_number "$REFUSED_STATUS" || refuse 503 "the record log cannot be written"
    return 1
}

# Under the lock: the text, synced, then the header with the new length, synced.
record_log_write() {
    local size
    if ! record_log_read_length; then
        echo "$REFUSED_STATUS $REFUSED_REASON"
        return 1
    fi
    size=$(file_size "$1") || return 1
    if [ $((RECORD_LOG_LENGTH + size + 1)) -gt "$RECORD_LOG_MAX_BYTES" ]; then
        echo "507 the record log is full (at most $RECORD_LOG_MAX_BYTES bytes)"
        return 1
    fi
    { cat "$1" && echo; } |
        dd of="$RECORD_DEVICE" bs=4096 seek=$((RECORD_LOG_OFFSET + RECORD_LOG_HEADER_BYTES + RECORD_LOG_LENGTH)) \
            oflag=seek_bytes conv=notrunc,fsync status=none || {
        echo "503 the record log cannot be written"
        return 1
    }
    printf '%s\nlength %010d\n' "$RECORD_LOG_MAGIC" $((RECORD_LOG_LENGTH + size + 1)) |
        dd of="$RECORD_DEVICE" bs="$RECORD_LOG_HEADER_BYTES" count=1 seek="$RECORD_LOG_OFFSET" \
            iflag=fullblock oflag=seek_bytes conv=notrunc,sync,fsync status=none || {
        echo "503 the record log cannot be written"
        return 1
    }
}

# At boot: what the disk holds, or why it cannot be read.
log_record_log() {
    if record_log_read_length; then
        log "record log: $(record_log_list | count_newlines) records ($RECORD_LOG_LENGTH bytes) on $RECORD_DEVICE"
    else
        log "record log: $REFUSED_REASON"
    fi
}
