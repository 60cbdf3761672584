#!/usr/bin/env python3
"""One daemon's whole common life: CLI, config checking, serving, reload (good, bad,
restart-only), sd_notify messages, watchdog, second instance refused, clean stop."""

import os
import re
import signal
import threading
import socket
import sys
import time

from harness import (STATE_DAEMONS, Daemon, Tap, free_port, get_json, raw_exchange, request, run,
                     tempdir,
                     wait_until, write_config, binary)

name = sys.argv[1]
t = Tap()
exe = binary(name)
d = tempdir()
rundir = os.path.join(d, "run")
extra = ""
if name == "gatewayd":
    extra = f'[public]\nlisten = ["127.0.0.1:{free_port()}"]\n'

# --- command line --------------------------------------------------------------------------
r = run([exe, "--version"])
t.ok(r.returncode == 0 and r.stdout.strip() == f"strata-{name} 0.1.0", "--version", r)
r = run([exe, "--help"])
t.ok(r.returncode == 0 and "Usage: strata-" + name in r.stdout and "--check-config" in r.stdout,
     "--help", r)
r = run([exe, "--no-such-option"])
t.ok(r.returncode == 2 and "unknown option" in r.stderr, "unknown option exits 2", r)

# --- --check-config -------------------------------------------------------------------------
conf = write_config(os.path.join(d, f"{name}.conf"), name, rundir, d, extra)
r = run([exe, "--check-config", "--config", conf])
t.ok(r.returncode == 0 and f"{conf}: ok" in r.stdout, "--check-config accepts a good file", r)

bad_cases = [
    ("[log]\nlevel = \"loud\"\n", 2, "log.level"),
    ("[http]\nmax_body_bytes = -5\n", 2, "http.max_body_bytes"),
    ("[http]\nconnection_limit = \"many\"\n", 2, "http.connection_limit"),
    ("[daemon]\nrun_dir = \"/x\"\n", 2, "daemon.run_dir"),
    ("[nosuch]\nkey = 1\n", 1, "nosuch"),
    ("[log\n", 1, ""),
]
if name == "metad":  # its own value rules, checked as start() would apply them
    bad_cases += [
        ('[events]\nsinks = ["notifyd unix:/a.sock", "lonely"]\n', 2, "events.sinks"),
        ('[events]\nsinks = ["a unix:/a.sock", "a unix:/b.sock"]\n', 2, "configured twice"),
        ('[events]\nsinks = ["Bad_Name unix:/a.sock"]\n', 2, "is not [a-z0-9-]"),
        ('[events]\nsinks = ["web ftp://example"]\n', 2, "invalid HTTP client target"),
        ('\n[blockd]\nsocket = "unix:"\n', 3, "blockd.socket"),
    ]
for text, line, key in bad_cases:
    bad = os.path.join(d, "bad.conf")
    with open(bad, "w") as f:
        f.write(text)
    r = run([exe, "--check-config", "--config", bad])
    want = f"{bad}:{line}:"
    t.ok(r.returncode == 1 and r.stderr.startswith(want) and key in r.stderr,
         f"--check-config rejects {text.splitlines()[-1]!r} naming file:line and key", r)

dropdir = conf + ".d"
os.makedirs(dropdir)
with open(os.path.join(dropdir, "50-bad.conf"), "w") as f:
    f.write("\n[http]\nidle_timeout = 0\n")
r = run([exe, "--check-config", "--config", conf])
t.ok(r.returncode == 1 and "50-bad.conf:3:" in r.stderr and "http.idle_timeout" in r.stderr,
     "--check-config reads conf.d drop-ins", r)
os.remove(os.path.join(dropdir, "50-bad.conf"))

# --- serving, with sd_notify and the watchdog watched ------------------------------------------
notify_path = os.path.join(d, "notify.sock")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
messages = []


# Drained all the time by a thread, as systemd does: a unix datagram queue holds only
# net.unix.max_dgram_qlen messages, and a full one blocks sd_notify() in the daemon.
def _receive():
    while True:
        try:
            messages.append(notify.recv(4096).decode())
        except OSError:
            return


threading.Thread(target=_receive, daemon=True).start()


def seen(prefix):
    return any(m.startswith(prefix) or ("\n" + prefix) in m for m in messages)


daemon = Daemon(name, conf, rundir, env={"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "200000"})
ready = daemon.wait_ready()
t.ok(ready, "starts and answers /healthz", daemon.output())
if not ready:
    t.done()
t.ok(wait_until(lambda: seen("READY=1")), "sends READY=1", messages)
t.ok(wait_until(lambda: sum(m == "WATCHDOG=1" for m in messages) >= 2),
     "sends WATCHDOG=1 at half the watchdog interval", messages)

st, body = get_json(daemon.sock, "/healthz")
t.ok(st == 200 and body == {"status": "ok"}, "/healthz", body)
st, status = get_json(daemon.sock, "/v1/status")
t.ok(st == 200 and status["name"] == name and status["version"] == "0.1.0"
     and status["pid"] == daemon.proc.pid and status["uptime_seconds"] >= 0
     and re.fullmatch(r"sha256:[0-9a-f]{64}", status["config_digest"])
     and status["config_files"] == [conf], "/v1/status", status)
if name in STATE_DAEMONS:
    state = os.path.join(d, STATE_DAEMONS[name])
    t.ok(status.get("state_dir") == state and os.path.isfile(os.path.join(state, "lock")),
         "state directory created and locked", status)
st, headers, metrics = request(daemon.sock, "GET", "/metrics")
metrics = metrics.decode()
t.ok(st == 200 and headers.get("Content-Type", "").startswith("text/plain; version=0.0.4")
     and f'strata_build_info{{daemon="{name}",version="0.1.0"}} 1' in metrics
     and "strata_uptime_seconds " in metrics
     and 'strata_http_requests_total{route="/healthz",method="GET",code="200"}' in metrics,
     "/metrics", metrics)
st, _, body = request(daemon.sock, "GET", "/nope")
t.ok(st == 404 and b'"code":"not_found"' in body, "unknown path: 404 in the error shape", body)
mode = os.stat(daemon.sock).st_mode & 0o777
t.ok(mode == 0o660, "control socket has mode 0660", oct(mode))

# --- second instance refused ------------------------------------------------------------------
second = Daemon(name, conf, rundir)
try:
    rc = second.proc.wait(10)
except Exception:
    rc = None
t.ok(rc == 1 and ("another process" in second.output() or "in use" in second.output()),
     "a second instance on the same socket/state refuses to start", second.output())
t.ok(request(daemon.sock, "GET", "/healthz")[0] == 200, "the first instance still serves")

# --- a socket group that does not exist is an error, not silently ignored ------------------------
nogroup_dir = tempdir()
nogroup = write_config(os.path.join(nogroup_dir, f"{name}.conf"), name,
                       os.path.join(nogroup_dir, "run"), nogroup_dir)
with open(nogroup) as f:
    text = f.read().replace('group = ""', 'group = "no-such-group-strata"')
if name == "gatewayd":
    text += f'[public]\nlisten = ["127.0.0.1:{free_port()}"]\n'
with open(nogroup, "w") as f:
    f.write(text)
third = Daemon(name, nogroup, os.path.join(nogroup_dir, "run"))
rc = third.proc.wait(10)
t.ok(rc == 1 and "group 'no-such-group-strata' does not exist" in third.output(),
     "an unknown daemon.group stops the start with a clear message", third.output())

# --- reload: good, bad, restart-only ---------------------------------------------------------
digest0 = status["config_digest"]
with open(conf, "a") as f:
    f.write("[log]\nlevel = \"debug\"\n")
messages.clear()
daemon.signal(signal.SIGHUP)
t.ok(wait_until(lambda: get_json(daemon.sock, "/v1/status")[1]["config_digest"] != digest0),
     "SIGHUP applies a good config", daemon.output())
t.ok(wait_until(lambda: seen("RELOADING=1") and seen("READY=1"), timeout=3),
     "reload is bracketed by RELOADING=1 / READY=1",
     messages)
digest1 = get_json(daemon.sock, "/v1/status")[1]["config_digest"]

good_text = open(conf).read()
with open(conf, "a") as f:
    f.write("bogus = 1\n")
daemon.signal(signal.SIGHUP)
t.ok(wait_until(lambda: "reload rejected" in daemon.output()), "bad config on SIGHUP is logged",
     daemon.output())
t.ok(request(daemon.sock, "GET", "/healthz")[0] == 200
     and get_json(daemon.sock, "/v1/status")[1]["config_digest"] == digest1,
     "after a rejected reload the old config keeps serving")
st, _, body = request(daemon.sock, "POST", "/v1/reload")
t.ok(st == 422 and b"config_rejected" in body and b"unknown key" in body,
     "POST /v1/reload with a bad file: 422 naming the problem", body)
metrics = request(daemon.sock, "GET", "/metrics")[2].decode()
t.ok('strata_config_reloads_total{result="error"} 2' in metrics, "failed reloads are counted",
     metrics)

with open(conf, "w") as f:
    f.write(good_text + "[http]\nconnection_limit = 17\nmax_body_bytes = 10\n")
st, _, body = request(daemon.sock, "POST", "/v1/reload")
st2, status = get_json(daemon.sock, "/v1/status")
t.ok(st == 200 and status["pending_restart"] == ["http.connection_limit"],
     "restart-only keys are reported as pending", (body, status))
reply = raw_exchange(daemon.sock, b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n"
                     b"Connection: close\r\n\r\n" + b"x" * 11)
t.ok(reply.startswith(b"HTTP/1.1 413"), "reloadable http.max_body_bytes applies at once", reply)

# --- stop --------------------------------------------------------------------------------------
messages.clear()
rc, took = daemon.stop()
t.ok(rc == 0 and took < 5, f"SIGTERM stops cleanly within 5 s (took {took:.2f}s)", daemon.output())
t.ok(wait_until(lambda: seen("STOPPING=1"), timeout=3), "sends STOPPING=1", messages)
t.ok(not os.path.exists(daemon.sock), "removes the socket it created")
t.done()
