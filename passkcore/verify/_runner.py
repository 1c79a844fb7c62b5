"""Trusted bootstrap that runs inside the sandbox (copied next to the candidate program).

It reads a one-time nonce from stdin, drops root to nobody (65534) so RLIMIT_NPROC applies, runs
main.py, and prints the nonce only if the program and its tests finished: a program that calls
exit(0) before its tests run does not pass.
"""

import os
import sys
import traceback


def _run() -> int:
    nonce = sys.stdin.readline().strip()
    sys.stdin.close()
    sys.stdin = open(os.devnull)
    if os.getuid() == 0 and os.environ.pop("PASSK_DROP_UID", "1") == "1":
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    with open("main.py") as fh:
        source = fh.read()
    try:
        code = compile(source, "main.py", "exec")
        exec(code, {"__name__": "__passk_candidate__"})
    except AssertionError:
        traceback.print_exc(limit=3)
        return 3
    except MemoryError:
        return 4
    except SystemExit:
        return 6
    except BaseException:  # noqa: BLE001 - any other failure of hostile code is a crash
        traceback.print_exc(limit=3)
        return 5
    sys.stdout.write("PASSK-OK " + nonce + "\n")
    sys.stdout.flush()
    return 0


os._exit(_run())
