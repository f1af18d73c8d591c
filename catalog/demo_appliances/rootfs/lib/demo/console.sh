# The guest's two consoles: the serial port (ttyS0, which is /dev/console because the kernel command
# line names it last) and the screen (tty1, the VGA text console). The kernel writes to both; this
# copies what init and the services it starts print to both, and offers a login on the serial port.
# The paths are variables so that tests can run these functions on the build machine.
: "${SCREEN_TTY:=/dev/tty1}"
: "${SERIAL_TTY:=ttyS0}"
: "${CONSOLE_PIPE:=/tmp/console.pipe}"

# From here on, whatever this shell and its children print reaches /dev/console and the screen.
# tee reads the pipe and writes each piece to both as it comes. Without a screen (no VGA), tee says
# so once and goes on writing to the serial console.
show_on_both_consoles() {
    mkfifo "$CONSOLE_PIPE" || return 1
    tee "$SCREEN_TTY" <"$CONSOLE_PIPE" 2>/dev/null &
    exec >"$CONSOLE_PIPE" 2>&1
}

# A login prompt on the serial port, and a new one after every logout. The only account is root,
# with no password (/etc/passwd): a demo appliance, said so on its catalog page. busybox login,
# unlike a shell started straight from here, gives the shell Ctrl-C back (a background job of this
# non-interactive shell starts with SIGINT ignored).
serial_login() {
    while :; do
        getty -L 115200 "$SERIAL_TTY" vt100
        sleep 1
    done
}
