#!/usr/bin/env python3
"""API keys of strata-metad against the real daemon: created with a session (the token shown
once), used as Bearer credentials with their scopes enforced, listed without secrets,
revoked, and never usable across users or when altered."""

import json
import os

from harness import Daemon, Tap, UnixHTTPConnection, metad_auth, tempdir, write_config

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")
conf = write_config(os.path.join(d, "metad.conf"), "metad", rundir, d, metad_auth(d))
metad = Daemon("metad", conf, rundir)
t.ok(metad.wait_ready(), "metad starts", metad.output())


def call(method, path, body=None, token=None):
    c = UnixHTTPConnection(metad.sock, timeout=20)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = c.getresponse()
    out = r.status, r.read()
    c.close()
    return out


def user(name):
    call("POST", "/v1/users", {"name": name, "email": f"{name}@example.org",
                               "password": "correct horse"})
    st, out = call("POST", "/v1/sessions", {"login": name, "password": "correct horse"})
    j = json.loads(out)
    return j["token"], j["user"]


alice_session, alice = user("alice")
bob_session, bob = user("bob")

st, out = call("POST", "/v1/keys", {"name": "backup script"}, alice_session)
ro = json.loads(out)
t.ok(st == 201 and ro["token"].startswith("sk_") and ro["scopes"] == ["files:read"],
     "a key (read-only by default), its token shown once", out)
st, out = call("GET", "/v1/users/me", token=ro["token"])
t.ok(st == 200 and json.loads(out)["id"] == alice["id"], "the key authenticates as alice", out)
st, _ = call("GET", f"/v1/nodes/{alice['root']}/children", token=ro["token"])
t.ok(st == 200, "a read-only key lists")
st, out = call("POST", "/v1/folders", {"parent": alice["root"], "name": "x"}, ro["token"])
t.ok(st == 403 and b"insufficient_scope" in out, "and may not write: 403", (st, out))
st, out = call("POST", "/v1/keys", {"name": "sync", "scopes": ["files:read", "files:write"]},
               alice_session)
rw = json.loads(out)
st, out = call("POST", "/v1/folders", {"parent": alice["root"], "name": "x"}, rw["token"])
t.ok(st == 201, "a read-write key creates a folder", out)
st, out = call("POST", "/v1/keys", {"scopes": ["admin"]}, alice_session)
t.ok(st == 400 and b"bad_scope" in out, "an unknown scope: 400", out)
st, out = call("POST", "/v1/keys", {"scopes": []}, alice_session)
t.ok(st == 400, "no scopes: 400", out)

st, out = call("GET", "/v1/keys", token=alice_session)
items = json.loads(out)["items"]
t.ok(st == 200 and sorted(k["name"] for k in items) == ["backup script", "sync"]
     and all("token" not in k and "digest" not in k for k in items),
     "alice's keys are listed without secrets", out)
st, out = call("GET", "/v1/keys", token=bob_session)
t.ok(json.loads(out)["items"] == [], "bob sees none of them", out)

altered = ro["token"][:-1] + ("A" if ro["token"][-1] != "A" else "B")
st, _ = call("GET", "/v1/users/me", token=altered)
t.ok(st == 401, "an altered secret: 401", st)
other_id = ro["token"][:3] + "%016x" % (int(ro["token"][3:19], 16) + 1) + ro["token"][19:]
st, _ = call("GET", "/v1/users/me", token=other_id)
t.ok(st == 401, "the secret under another key id: 401", st)
st, _ = call("DELETE", f"/v1/keys/{ro['id']}", token=bob_session)
t.ok(st == 404, "bob cannot revoke alice's key (404)", st)
st, _ = call("DELETE", f"/v1/keys/{ro['id']}", token=alice_session)
st2, _ = call("GET", "/v1/users/me", token=ro["token"])
st3, _ = call("GET", "/v1/users/me", token=rw["token"])
t.ok(st == 204 and st2 == 401 and st3 == 200, "a revoked key stops working, the other does not",
     (st, st2, st3))

rc, _ = metad.stop()
metad = Daemon("metad", conf, rundir)
t.ok(metad.wait_ready(), "restarts")
st2, _ = call("GET", "/v1/users/me", token=ro["token"])
st3, _ = call("GET", "/v1/users/me", token=rw["token"])
t.ok(st2 == 401 and st3 == 200, "keys and revocations survive a restart", (st2, st3))
rc, _ = metad.stop()
t.ok(rc == 0, "stops cleanly")
t.done()
