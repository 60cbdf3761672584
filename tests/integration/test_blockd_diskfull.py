#!/usr/bin/env python3
"""strata-blockd on a full disk (a 12 MiB tmpfs as its state directory): a block PUT and a blob
upload that do not fit get 507, keep nothing partial, and the daemon keeps serving; once
space is freed, uploads work again. Needs root (mount); skipped otherwise."""

import hashlib
import json
import os
import subprocess
import sys

from harness import Daemon, Tap, UnixHTTPConnection, tempdir, write_config

if os.geteuid() != 0:
    print("1..0 # SKIP mounting a tmpfs needs root")
    sys.exit(0)

t = Tap()
d = tempdir()
state = os.path.join(d, "blocks")
os.makedirs(state)
mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", state]).returncode == 0
if not mounted:
    print("1..0 # SKIP cannot mount a tmpfs here")
    sys.exit(0)
blockd = None
MiB = 1024 * 1024


def call(method, path, body=None):
    c = UnixHTTPConnection(blockd.sock, timeout=30)
    try:
        c.request(method, path, body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.read()
    except (BrokenPipeError, ConnectionResetError) as e:
        return 0, str(e).encode()
    finally:
        c.close()


def partial_files():
    return [os.path.join(r, f) for r, _, fs in os.walk(state) for f in fs if f.endswith(".part")]


try:
    rundir = os.path.join(d, "run")
    conf = write_config(os.path.join(d, "blockd.conf"), "blockd", rundir, d,
                        "[upload]\nmax_blob_bytes = 100000000\n")
    blockd = Daemon("blockd", conf, rundir)
    t.ok(blockd.wait_ready(), "blockd starts on a 12 MiB tmpfs", blockd.output())

    first = os.urandom(4 * MiB)
    st, out = call("PUT", "/v1/blocks/" + hashlib.sha256(first).hexdigest(), first)
    t.ok(st == 201, "a block that fits is stored", (st, out))

    big = os.urandom(20 * MiB)
    st, out = call("POST", "/v1/blobs", big)
    t.ok(st == 507 and b"insufficient_storage" in out, "a blob that does not fit: 507", (st, out))
    t.ok(partial_files() == [], "no partial block is left", partial_files())
    second = os.urandom(4 * MiB)
    while True:  # fill what is left with blocks until one no longer fits
        st, out = call("PUT", "/v1/blocks/" + hashlib.sha256(second).hexdigest(), second)
        if st != 201:
            break
        second = os.urandom(4 * MiB)
    t.ok(st == 507 and b"insufficient_storage" in out, "a block that does not fit: 507",
         (st, out))
    t.ok(partial_files() == [], "still no partial block", partial_files())
    st, out = call("GET", "/healthz")
    t.ok(st == 200, "the daemon keeps serving", (st, out))
    st, out = call("POST", "/v1/blocks/missing",
                   json.dumps({"blocks": [hashlib.sha256(first).hexdigest()]}))
    t.ok(st == 200 and json.loads(out) == {"missing": []}, "and what it stored is intact", out)

    # Free space (as GC would): the next upload works.
    for r, _, fs in os.walk(os.path.join(state, "blocks")):
        for f in fs:
            os.unlink(os.path.join(r, f))
    small = os.urandom(MiB)
    st, out = call("POST", "/v1/blobs", small)
    ok = st == 201
    if ok:
        cid = json.loads(out)["id"]
        st2, body = call("GET", f"/v1/content/{cid}")
        ok = st2 == 200 and body == small
    t.ok(ok, "after space is freed, uploads and reads work again", (st, out[:200]))
    rc, _ = blockd.stop()
    t.ok(rc == 0, "stops cleanly", blockd.output())
    blockd = None
finally:
    if blockd is not None:
        blockd.stop()
    subprocess.run(["umount", "-l", state])
t.done()
