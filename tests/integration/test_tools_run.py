#!/usr/bin/env python3
"""tools/run as a developer uses it: the seven daemons come up healthy, a killed one is
restarted, Ctrl-C (SIGINT) stops them all."""

import json
import os
import random
import signal
import socket
import subprocess
import time

from harness import DAEMONS, Tap, _procs, binary, free_port, run, tempdir, wait_until

t = Tap()
src = os.environ["STRATA_SOURCE_ROOT"]
state = tempdir()


def free_port_pair():
    """PORT and PORT+1 both free, below the ephemeral range (32768 up): the kernel hands
    ports from there to the client sockets of tests running beside this one, and one of
    them on PORT+1 would stop blockd from binding it."""
    for _ in range(200):
        p = random.randrange(20000, 32000, 2)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", p))
                b.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    return free_port()


# A port already taken is refused up front, naming it, instead of a daemon restart loop.
port = free_port_pair()
with socket.socket() as busy:
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", port + 1))
    busy.listen()
    env0 = dict(os.environ, STRATA_BUILD=os.environ["STRATA_BUILD_DIR"],
                STRATA_STATE=tempdir(), STRATA_NO_BUILD="1")
    r = subprocess.run([os.path.join(src, "tools", "run"), "--port", str(port)], env=env0,
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    t.ok(r.returncode == 1 and f"127.0.0.1:{port + 1} is in use" in r.stderr,
         "a port in use is refused before any daemon starts", r)
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

# The gateway publishes API v1 (strata-api(7) ROUTING): sign up, log in, list the root
# folder with the session token; without it the route answers 401.
base = f"http://127.0.0.1:{port}"


def api(method, path, body=None, token=None):
    args = ["curl", "-s", "-o", "/dev/stdout", "-w", "\n%{http_code}", "-X", method,
            "-m", "10"]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data", json.dumps(body)]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    r = run(args + [base + path])
    text, _, code = r.stdout.rpartition("\n")
    return (int(code) if code.isdigit() else 0), text


code, body = api("POST", "/v1/users", {"name": "dev", "email": "dev@example.org",
                                       "password": "correct horse battery"})
t.ok(code == 201, "sign-up through the local gateway", (code, body))
root = json.loads(body).get("root", "0") if code == 201 else "0"
code, body = api("POST", "/v1/sessions", {"login": "dev", "password": "correct horse battery"})
token = json.loads(body).get("token") if code == 201 else None
t.ok(token and token.startswith("st1."), "login through the local gateway", (code, body))
code, body = api("GET", f"/v1/nodes/{root}", token=token)
t.ok(code == 200, "the session token works on an auth=required route", (code, body))
code, body = api("GET", f"/v1/nodes/{root}")
t.ok(code == 401, "and without it the route answers 401", (code, body))

# A file up through the gateway in one request, then down: the redirect to a signed URL,
# followed by curl (-L) to blockd through the gateway's /c route.
up = run(["curl", "-s", "-m", "10", "-H", f"Authorization: Bearer {token}", "--data-binary",
          "hello from tools/run\n", f"{base}/v1/upload?parent={root}&name=hello.txt"])
node = json.loads(up.stdout).get("id") if up.stdout.startswith("{") else None
t.ok(node, "a one-shot upload through the local gateway", up.stdout)
down = run(["curl", "-s", "-L", "-m", "10", "-H", f"Authorization: Bearer {token}",
            f"{base}/v1/nodes/{node}/content"])
t.ok(down.stdout == "hello from tools/run\n", "and its download (302 to a signed URL)",
     down.stdout[:200])

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
