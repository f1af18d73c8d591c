# The ACPI power button, which libvirt's shutdown presses (and its reboot, which then starts the
# guest again). button.ko reports a press as a key on the "Power Button" input device, and evdev
# makes that device readable: every read of it is a press, so no event needs decoding.
: "${SYS_INPUT:=/sys/class/input}"
: "${INPUT_DEVICES:=/dev/input}"
# Each read returns whole events: 24 bytes each on a 64-bit kernel.
INPUT_EVENT_BYTES=24

# The event device of the ACPI power button, once it is there (within about a second).
power_button_device() {
    local tries=0 input event
    while [ "$tries" -lt 20 ]; do
        for input in "$SYS_INPUT"/input*; do
            [ "$(cat "$input/name" 2>/dev/null)" = "Power Button" ] || continue
            for event in "$input"/event*; do
                [ -e "$INPUT_DEVICES/${event##*/}" ] && echo "$INPUT_DEVICES/${event##*/}" && return 0
            done
        done
        tries=$((tries + 1))
        sleep 0.05
    done
    return 1
}

# In the background: power off when the button is pressed (poweroff does not return; should it
# fail, the next press tries again).
watch_power_button() {
    local device
    if ! device=$(power_button_device); then
        log "no ACPI power button: a shutdown will end in a forced power-off"
        return 1
    fi
    while dd if="$device" of=/dev/null bs="$INPUT_EVENT_BYTES" count=1 status=none; do
        power_off
    done
}

# Let an append to the record log finish (and start no other), flush every disk, cut the power.
power_off() {
    log "power button pressed: flushing the disks, then powering off"
    record_log_lock || log "an append to the record log did not finish in time"
    sync
    log "powering off"
    poweroff -f
}
