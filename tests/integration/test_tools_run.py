#!/usr/bin/env python3
"""tools/run as a developer uses it: the seven daemons come up healthy, a killed one is
restarted, Ctrl-C (SIGINT) stops them all."""

import os
import signal
import subprocess
import time

from harness import DAEMONS, Tap, _procs, binary, free_port, run, tempdir, wait_until

t = Tap()
src = os.environ["STRATA_SOURCE_ROOT"]
state = tempdir()
port = free_port()
env = dict(os.environ, STRATA_BUILD=os.environ["STRATA_BUILD_DIR"], STRATA_STATE=state,
           STRATA_NO_BUILD="1")
log = open(os.path.join(state, "tools-run.out"), "wb")
proc = subprocess.Popen([os.path.join(src, "tools", "run"), "--port", str(port)], env=env,
                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
_procs.append(proc)


def output():
    with open(os.path.join(state, "tools-run.out"), "rb") as f:
        return f.read().decode(errors="replace")


ctl = [binary("stratactl"), "--runtime-dir", os.path.join(state, "run")]
t.ok(wait_until(lambda: "Strata is running" in output(), timeout=120),
     "tools/run says the stack is running", output())
t.ok(f"http://127.0.0.1:{port}/" in output(), "and where to point a browser", output())
r = run(ctl + ["status"])
t.ok(r.returncode == 0 and r.stdout.count(" up ") == 7, "stratactl status: all seven up", r)

status = run(["curl", "-s", "--unix-socket", os.path.join(state, "run", "metad.sock"),
              "http://localhost/v1/status"]).stdout
old = int(status.split('"pid":')[1].split(",")[0])
os.kill(old, signal.SIGKILL)


def restarted():
    r = run(["curl", "-s", "--unix-socket", os.path.join(state, "run", "metad.sock"),
             "http://localhost/v1/status"])
    return '"pid":' in r.stdout and int(r.stdout.split('"pid":')[1].split(",")[0]) != old


t.ok(wait_until(restarted, timeout=15), "a daemon killed with SIGKILL is restarted", output())

os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
try:
    rc = proc.wait(15)
except subprocess.TimeoutExpired:
    rc = None
t.ok(rc == 0 and "all stopped" in output(), "Ctrl-C stops everything", output())
left = run(["pgrep", "-f", f"--config {state}/etc/"]).stdout.split()
t.ok(not left, "no daemon is left running", left)
t.done()
