"""Runs a server for one test process and stops it when that process goes away.

    supervise.py LOG [--cleanup DIR] -- COMMAND [ARGS...]

Starts COMMAND in its own session (process group) with stdout and stderr appended to LOG, then
reads its own standard input until end of file. The test process holds the write end of that
pipe and never closes it, so end of file means the test process has exited - normally, by a
panic, or killed - and the whole process group of the server is stopped (TERM, then KILL after
10 s) and DIR removed. When the server exits by itself the supervisor exits too, with its status,
and leaves DIR (and the log in it) for the test process to report.
Used by tests/it/common/aws.rs when no FORMWORK_TEST_*_URL is set; standard library only.
"""
import os
import shutil
import signal
import subprocess
import sys
import threading


def signal_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


stopping = threading.Event()


def stop(proc):
    """TERM to the server's group now, KILL 10 s later if it is still there."""
    stopping.set()
    signal_group(proc.pid, signal.SIGTERM)
    timer = threading.Timer(10, signal_group, (proc.pid, signal.SIGKILL))
    timer.daemon = True
    timer.start()


def main(argv):
    if "--" not in argv or argv.index("--") < 1:
        print(__doc__, file=sys.stderr)
        return 64
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    log = options[0]
    cleanup = options[options.index("--cleanup") + 1] if "--cleanup" in options else None
    with open(log, "ab") as out:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def watch_parent():
        try:
            while sys.stdin.buffer.read(65536):
                pass
        except OSError:
            pass
        stop(proc)

    threading.Thread(target=watch_parent, daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop(proc))
    status = proc.wait()
    signal_group(proc.pid, signal.SIGKILL)  # whatever the server left behind in its group
    if cleanup and stopping.is_set():
        shutil.rmtree(cleanup, ignore_errors=True)
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
