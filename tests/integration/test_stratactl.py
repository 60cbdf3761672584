#!/usr/bin/env python3
"""stratactl against the seven real daemons: status, reload, metrics, and what it says when a
daemon is down or the command is wrong."""

import os
import signal

from harness import DAEMONS, Daemon, Tap, binary, free_port, run, tempdir, write_config

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")
ctl = binary("stratactl")
daemons = {}
for name in DAEMONS:
    extra = f'[public]\nlisten = ["127.0.0.1:{free_port()}"]\n' if name == "gatewayd" else ""
    conf = write_config(os.path.join(d, f"{name}.conf"), name, rundir, d, extra)
    daemons[name] = Daemon(name, conf, rundir)
t.ok(all(dm.wait_ready() for dm in daemons.values()), "all seven daemons start",
     "\n".join(dm.output() for dm in daemons.values()))


def ctl_run(*args):
    return run([ctl, "--runtime-dir", rundir, *args])


r = ctl_run("status")
lines = r.stdout.strip().splitlines()
t.ok(r.returncode == 0 and lines[0].split() == ["DAEMON", "STATE", "VERSION", "UPTIME", "PID"]
     and len(lines) == 8 and all(l.split()[1] == "up" and l.split()[2] == "0.1.0"
                                 for l in lines[1:]),
     "status: a table with all seven up", r)
r = run([ctl, "status"], env={"STRATA_RUNTIME_DIR": rundir})
t.ok(r.returncode == 0, "STRATA_RUNTIME_DIR is honoured", r)
r = ctl_run("--json", "status")
t.ok(r.returncode == 0 and '"state": "up"' in r.stdout, "status --json", r)

r = ctl_run("reload", "metad")
t.ok(r.returncode == 0 and "configuration reloaded (sha256:" in r.stdout, "reload NAME", r)
with open(daemons["metad"].config, "a") as f:
    f.write("[log]\nlevel = 3\n")
r = ctl_run("reload", "strata-metad")
t.ok(r.returncode == 1 and "reload rejected" in r.stderr and "log.level" in r.stderr,
     "reload with a bad config says why and exits 1", r)

r = ctl_run("metrics", "dnsd")
t.ok(r.returncode == 0 and 'strata_build_info{daemon="dnsd"' in r.stdout, "metrics NAME", r)

daemons["notifyd"].stop()
r = ctl_run("status")
row = [l for l in r.stdout.splitlines() if l.startswith("strata-notifyd")]
t.ok(r.returncode == 3 and row and row[0].split()[1] == "down"
     and "strata-notifyd is down" in r.stderr, "status: a stopped daemon is down, exit 3", r)
r = ctl_run("metrics", "notifyd")
t.ok(r.returncode == 1 and "strata-notifyd is down: no socket at" in r.stderr,
     "a command to a stopped daemon says it is down", r)

# A crashed daemon leaves its socket file behind: nothing listens there.
daemons["dnsd"].signal(signal.SIGKILL)
daemons["dnsd"].proc.wait()
r = ctl_run("reload", "dnsd")
t.ok(r.returncode == 1 and "nothing listens" in r.stderr, "stale socket: 'nothing listens'", r)

for args, why in [((), "no command"), (("reload",), "reload without NAME"),
                  (("reload", "nosuchd"), "unknown daemon"), (("frobnicate",), "unknown command"),
                  (("--timeout", "zero", "status"), "bad timeout")]:
    r = ctl_run(*args)
    t.ok(r.returncode == 2 and r.stderr.startswith("stratactl: "), f"usage error: {why}", r)
r = run([ctl, "--version"])
t.ok(r.returncode == 0 and r.stdout.strip() == "stratactl 0.1.0", "--version", r)

for dm in daemons.values():
    if dm.proc.poll() is None:
        rc, _ = dm.stop()
        t.ok(rc == 0, f"strata-{dm.name} stops cleanly")
t.done()
