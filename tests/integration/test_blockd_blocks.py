#!/usr/bin/env python3
"""strata-blockd's block API against the real daemon: PUT a block (stored, then deduplicated),
bad hashes and mismatches store nothing, 4 MiB limit, the missing-blocks negotiation, and
blocks survive a restart."""

import hashlib
import json
import os

from harness import Daemon, Tap, raw_exchange, request, tempdir, write_config

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")
conf = write_config(os.path.join(d, "blockd.conf"), "blockd", rundir, d,
                    f'[signing]\nkey_file = "{d}/no-such.key"\n')
store = os.path.join(d, "blocks")
blockd = Daemon("blockd", conf, rundir)
t.ok(blockd.wait_ready(), "blockd starts", blockd.output())


def put(hexhash, body):
    # Raw, because blockd may answer (400) and close before the body is sent.
    reply = raw_exchange(blockd.sock, f"PUT /v1/blocks/{hexhash} HTTP/1.1\r\nHost: x\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                         + body)
    head, _, payload = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


def files_under(sub):
    return sorted(os.path.join(r, f) for r, _, fs in os.walk(os.path.join(store, sub)) for f in fs)


data = os.urandom(300000)
h = hashlib.sha256(data).hexdigest()
st, body = put(h, data)
path = os.path.join(store, "blocks", h[:2], h[2:4], h)
t.ok(st == 201 and body == {"sha256": h, "size": len(data), "stored": True}, "PUT stores a block",
     (st, body))
t.ok(os.path.isfile(path) and open(path, "rb").read() == data, "stored under its fan-out path")
st, body = put(h, data)
t.ok(st == 200 and body["stored"] is False, "PUT again is idempotent (200, not stored twice)",
     (st, body))

other = hashlib.sha256(b"other").hexdigest()
st, body = put(other, b"not other")
t.ok(st == 400 and body["error"]["code"] == "hash_mismatch", "hash mismatch: 400", body)
t.ok(not os.path.exists(os.path.join(store, "blocks", other[:2], other[2:4], other))
     and files_under("tmp") == [], "a mismatched body leaves nothing behind", files_under("tmp"))
st, body = put("..%2f..%2fetc", b"x")  # decodes to a path no route matches
t.ok(st in (400, 404) and not os.path.exists(os.path.join(d, "etc")), "path traversal: refused",
     (st, body))
for bad in [h.upper(), h[:63], "..." + h[3:], "x" * 64]:
    st, body = put(bad, b"x")
    t.ok(st == 400 and body["error"]["code"] == "invalid_hash", f"invalid hash {bad[:12]}…: 400",
         (st, body))

big = os.urandom(4 * 1024 * 1024 + 1)
reply = raw_exchange(blockd.sock, b"PUT /v1/blocks/" + hashlib.sha256(big).hexdigest().encode()
                     + b" HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(big)).encode()
                     + b"\r\nConnection: close\r\n\r\n" + big)
t.ok(reply.startswith(b"HTTP/1.1 413"), "a block over 4 MiB: 413", reply[:200])
exact = os.urandom(4 * 1024 * 1024)
st, body = put(hashlib.sha256(exact).hexdigest(), exact)
t.ok(st == 201, "a block of exactly 4 MiB is stored", (st, body))

absent = hashlib.sha256(b"absent").hexdigest()
st, _, out = request(blockd.sock, "POST", "/v1/blocks/missing",
                     body=json.dumps({"blocks": [h, absent, absent]}))
t.ok(st == 200 and json.loads(out) == {"missing": [absent]}, "missing lists what is not stored",
     out)
st, _, out = request(blockd.sock, "POST", "/v1/blocks/missing", body=b'{"blocks": ["nope"]}')
t.ok(st == 400 and b"invalid_hash" in out, "missing with a bad hash: 400", out)
st, _, out = request(blockd.sock, "POST", "/v1/blocks/missing", body=b'{"blocks": 3}')
t.ok(st == 400, "missing with a bad body: 400", out)
st, _, out = request(blockd.sock, "POST", "/v1/blocks/missing", body=b"{not json")
t.ok(st == 400 and b"bad_json" in out, "missing with broken JSON: 400", out)

metrics = request(blockd.sock, "GET", "/metrics")[2].decode()
t.ok("strata_blockd_blocks_stored_total 2" in metrics
     and "strata_blockd_blocks_deduplicated_total 1" in metrics, "block metrics", metrics)

st, _, out = request(blockd.sock, "GET", "/c/" + h + "?exp=1&sig=00")
t.ok(st == 503 and b"signing_not_configured" in out, "no signing key: signed links are off", out)

rc, _ = blockd.stop()
t.ok(rc == 0, "stops cleanly")
blockd = Daemon("blockd", conf, rundir)
t.ok(blockd.wait_ready(), "restarts on the same store")
st, _, out = request(blockd.sock, "POST", "/v1/blocks/missing", body=json.dumps({"blocks": [h]}))
t.ok(json.loads(out) == {"missing": []}, "blocks survive a restart", out)
blockd.stop()
t.done()
