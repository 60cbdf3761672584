#!/usr/bin/env python3
"""stratactl meta user add/list/disable/enable against the real strata-metad, and the admin
routes refusing anything but an operator on the control socket."""

import json
import os
import subprocess

from harness import (Daemon, Tap, UnixHTTPConnection, binary, metad_auth, tempdir,
                     write_config)

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")
conf = write_config(os.path.join(d, "metad.conf"), "metad", rundir, d, metad_auth(d))
metad = Daemon("metad", conf, rundir)
t.ok(metad.wait_ready(), "metad starts", metad.output())
ctl = [binary("stratactl"), "--runtime-dir", rundir]


def stratactl(*args, stdin=""):
    return subprocess.run(ctl + list(args), input=stdin, capture_output=True, text=True,
                          timeout=20)


def call(method, path, body=None, headers=None):
    c = UnixHTTPConnection(metad.sock, timeout=20)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json", **(headers or {})})
    r = c.getresponse()
    out = r.status, r.read()
    c.close()
    return out


r = stratactl("meta", "user", "add", "Carol", "carol@example.org", stdin="correct horse\n")
t.ok(r.returncode == 0 and "carol" in r.stdout, "meta user add (password on stdin)", r)
r = stratactl("meta", "user", "add", "dave", "dave@example.org", stdin="short\n")
t.ok(r.returncode == 1 and "8 to 1024" in r.stderr, "a short password is refused", r)
r = stratactl("meta", "user", "add", "carol", "other@example.org", stdin="correct horse\n")
t.ok(r.returncode == 1 and "taken" in r.stderr, "a taken name is refused", r)
r = stratactl("--json", "meta", "user", "list")
users = json.loads(r.stdout) if r.returncode == 0 else []
t.ok([u["name"] for u in users] == ["carol"] and users[0]["disabled"] is False,
     "meta user list", r)

st, out = call("POST", "/v1/sessions", {"login": "carol", "password": "correct horse"})
token = json.loads(out).get("token", "") if st == 201 else ""
t.ok(st == 201, "carol logs in", out)
r = stratactl("meta", "user", "disable", "carol")
t.ok(r.returncode == 0 and "yes" in r.stdout, "meta user disable", r)
st, _ = call("POST", "/v1/sessions", {"login": "carol", "password": "correct horse"})
st2, _ = call("GET", "/v1/users/me", headers={"Authorization": "Bearer " + token})
t.ok(st == 401 and st2 == 401, "a disabled user cannot log in, and its session stops", (st, st2))
r = stratactl("meta", "user", "enable", users[0]["id"] if users else "0")
st, _ = call("GET", "/v1/users/me", headers={"Authorization": "Bearer " + token})
t.ok(r.returncode == 0 and st == 200, "meta user enable (by id) brings the session back", (r, st))
r = stratactl("meta", "user", "disable", "nobody")
t.ok(r.returncode == 1 and "no user" in r.stderr, "an unknown user: exit 1", r)

for headers in ({"X-Strata-Caller": "user=" + (users[0]["id"] if users else "0")},
                {"Authorization": "Bearer " + token}):
    st, out = call("GET", "/v1/admin/users", headers=headers)
    st2, _ = call("PATCH", "/v1/admin/users/carol", {"disabled": True}, headers=headers)
    t.ok(st == 403 and st2 == 403, f"admin routes refuse a user identity ({list(headers)[0]})",
         (st, out))
st, out = call("PATCH", "/v1/admin/users/carol", {"disabled": "yes"})
t.ok(st == 400, "disabled must be a boolean", out)
rc, _ = metad.stop()
t.ok(rc == 0, "stops cleanly")
t.done()
