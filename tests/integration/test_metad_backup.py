#!/usr/bin/env python3
"""stratactl meta backup / restore against the real strata-metad: a backup taken while writes
go on is a consistent LMDB copy; restored into a new state directory, the daemon serves the
users and folders it holds. Restore refuses a running metad and a file that is not a backup."""

import json
import os
import threading

from harness import (Daemon, Tap, UnixHTTPConnection, binary, metad_auth, run, tempdir,
                     write_config)

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")


def config(state):
    """A config whose state directory is d/STATE."""
    path = write_config(os.path.join(d, f"metad-{state}.conf"), "metad", rundir, d,
                        metad_auth(d))
    text = open(path).read().replace(f'state_dir = "{d}/meta"', f'state_dir = "{d}/{state}"')
    open(path, "w").write(text)
    return path


def call(sock, method, path, body=None, headers=None):
    c = UnixHTTPConnection(sock, timeout=20)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json", **(headers or {})})
    r = c.getresponse()
    out = r.status, r.read()
    c.close()
    return out


ctl = [binary("stratactl"), "--runtime-dir", rundir]
metad = Daemon("metad", config("meta"), rundir)
t.ok(metad.wait_ready(), "metad starts", metad.output())
st, out = call(metad.sock, "POST", "/v1/users",
               {"name": "alice", "email": "a@example.org", "password": "correct horse"})
alice = json.loads(out)
caller = {"X-Strata-Caller": "user=" + alice["id"]}
for i in range(50):
    call(metad.sock, "POST", "/v1/folders", {"parent": alice["root"], "name": f"before {i}"},
         caller)

stop = threading.Event()


def writer():  # keeps writing while the backup is taken (bounded)
    for i in range(2000):
        if stop.is_set():
            break
        call(metad.sock, "POST", "/v1/folders", {"parent": alice["root"], "name": f"during {i}"},
             caller)


th = threading.Thread(target=writer)
th.start()
backup = os.path.join(d, "meta-backup.mdb")
r = run(ctl + ["meta", "backup", backup], timeout=60)
stop.set()
th.join(30)
t.ok(r.returncode == 0 and os.path.getsize(backup) > 0 and not os.path.exists(backup + ".part"),
     "stratactl meta backup while writes go on", r)
r = run(ctl + ["meta", "restore", backup, os.path.join(d, "restored")])
t.ok(r.returncode == 1 and "running" in r.stderr, "restore refuses while metad runs", r)
rc, _ = metad.stop()
t.ok(rc == 0, "metad stops")

garbage = os.path.join(d, "garbage.mdb")
with open(garbage, "wb") as f:
    f.write(os.urandom(8192))
r = run(ctl + ["meta", "restore", garbage, os.path.join(d, "restored")])
t.ok(r.returncode == 1 and "not a metad backup" in r.stderr
     and not os.path.exists(os.path.join(d, "restored", "db", "data.mdb")),
     "a file that is not a backup is refused", r)
r = run(ctl + ["meta", "restore", backup, os.path.join(d, "restored")])
t.ok(r.returncode == 0, "stratactl meta restore", r)

metad2 = Daemon("metad", config("restored"), rundir)
t.ok(metad2.wait_ready(), "metad starts on the restored database", metad2.output())
st, out = call(metad2.sock, "POST", "/v1/sessions",
               {"login": "alice", "password": "correct horse"})
t.ok(st == 201 and json.loads(out)["token"].startswith("st1."), "the user can log in", out)
names, cursor = [], ""
for _ in range(100):
    st, out = call(metad2.sock, "GET",
                   f"/v1/nodes/{alice['root']}/children?limit=1000&cursor={cursor}", None, caller)
    page = json.loads(out)
    names += [n["name"] for n in page["items"]]
    if not page["next_cursor"]:
        break
    cursor = page["next_cursor"]
before = [n for n in names if n.startswith("before ")]
during = sorted(int(n.split()[1]) for n in names if n.startswith("during "))
t.ok(len(before) == 50, "every folder made before the backup is there", len(before))
t.ok(during == list(range(len(during))),
     "folders made during the backup form a prefix (a snapshot, nothing torn)", during[:10])
rc, _ = metad2.stop()
t.ok(rc == 0, "stops cleanly")
t.done()
