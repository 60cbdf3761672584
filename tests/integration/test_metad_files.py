#!/usr/bin/env python3
"""Files in strata-metad against real daemons (metad + blockd on unix sockets): the commit
protocol (missing blocks, upload, commit again, verification), one-shot uploads, trash /
restore / purge, tags and search, follows and feeds, and the event outbox delivering to a
sink (a small HTTP server of this test) at least once, with idempotency keys."""

import hashlib
import http.server
import json
import os
import threading
import time

from harness import (Daemon, Tap, UnixHTTPConnection, metad_auth, raw_exchange, serve_unix,
                     tempdir, wait_until, write_config)

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")

# The event sink: records every POST (path, Idempotency-Key, body); answers 500 to the first
# delivery of each event (so every event is retried) and 200 afterwards.
events, seen_keys, lock = [], set(), threading.Lock()


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        key = self.headers.get("Idempotency-Key")
        with lock:
            first = key not in seen_keys
            seen_keys.add(key)
            if not first:
                events.append((self.path, key, json.loads(body)))
        self.send_response(500 if first else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass



sink_path = os.path.join(d, "sink.sock")
sink = serve_unix(sink_path, Sink)

bconf = write_config(os.path.join(d, "blockd.conf"), "blockd", rundir, d)
blockd = Daemon("blockd", bconf, rundir)
t.ok(blockd.wait_ready(), "blockd starts", blockd.output())
extra = metad_auth(d) + (f'[blockd]\nsocket = "unix:{blockd.sock}"\n'
                         f'[events]\nsinks = ["test unix:{sink_path}"]\n'
                         '[files]\nprocess_types = ["video/*"]\n')
mconf = write_config(os.path.join(d, "metad.conf"), "metad", rundir, d, extra)
metad = Daemon("metad", mconf, rundir)
t.ok(metad.wait_ready(), "metad starts", metad.output())


def call(sock, method, path, body=None, caller=None, headers=None, raw=None):
    c = UnixHTTPConnection(sock, timeout=30)
    h = dict(headers or {})
    if caller:
        h["X-Strata-Caller"] = f"user={caller}"
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    if body is not None:
        h["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    out = r.status, r.read(), dict(r.getheaders())
    c.close()
    return out


def mcall(*a, **k):
    st, out, _ = call(metad.sock, *a, **k)
    try:
        return st, json.loads(out) if out else None
    except ValueError:
        return st, out


def mk_user(name):
    st, u = mcall("POST", "/v1/admin/users",
                  {"name": name, "email": f"{name}@example.org", "password": "correct horse"})
    assert st == 201, (st, u)
    return u


alice, bob = mk_user("alice"), mk_user("bob")
A, B = alice["id"], bob["id"]

# --- commit protocol -------------------------------------------------------------------
content = os.urandom(5 * 1024 * 1024 + 123)  # two blocks
blocks = [content[:4 << 20], content[4 << 20:]]
hashes = [hashlib.sha256(b).hexdigest() for b in blocks]
whole = hashlib.sha256(content).hexdigest()
commit = {"parent": alice["root"], "name": "Holiday Video.mp4", "blocks": hashes,
          "size": len(content), "sha256": whole, "type": "video/mp4", "tags": ["Beach", "été"]}
st, out = mcall("POST", "/v1/files", commit, caller=A)
t.ok(st == 409 and out["error"]["code"] == "missing_blocks" and out["missing"] == hashes,
     "commit with no blocks stored: 409 listing both", out)
st, _, _ = call(blockd.sock, "PUT", f"/v1/blocks/{hashes[0]}", raw=blocks[0])
st, out = mcall("POST", "/v1/files", commit, caller=A)
t.ok(st == 409 and out["missing"] == [hashes[1]], "after uploading one: only the other", out)
call(blockd.sock, "PUT", f"/v1/blocks/{hashes[1]}", raw=blocks[1])
st, f1 = mcall("POST", "/v1/files", commit, caller=A)
t.ok(st == 201 and f1["kind"] == "file" and f1["size"] == len(content) and f1["sha256"] == whole
     and f1["type"] == "video/mp4" and f1["state"] == "processing" and f1["manifest"],
     "then the commit records the file (video: processing)", f1)
st, body, _ = call(blockd.sock, "GET", f"/v1/content/{f1['manifest']}")
t.ok(st == 200 and body == content, "blockd serves the committed manifest byte for byte")
st, out = mcall("POST", "/v1/files", commit, caller=A)
t.ok(st == 409 and out["error"]["code"] == "name_taken", "the same name again: 409", out)
st, out = mcall("POST", "/v1/files", dict(commit, name="copy.mp4", size=1), caller=A)
t.ok(st == 400 and out["error"]["code"] == "size_mismatch", "a wrong size: 400", out)
st, out = mcall("POST", "/v1/files", dict(commit, name="copy.mp4", sha256="0" * 64), caller=A)
t.ok(st == 400 and out["error"]["code"] == "hash_mismatch", "a wrong sha256: 400", out)
st, out = mcall("POST", "/v1/files", dict(commit, name="copy.mp4", blocks=["XYZ"]), caller=A)
t.ok(st == 400, "a malformed block hash: 400", out)
for bad in ["", "a/b", "..", "x\x01", "é" * 200]:
    st, out = mcall("POST", "/v1/files", dict(commit, name=bad), caller=A)
    t.ok(st == 400 and out["error"]["code"] == "invalid_name", f"name {bad[:8]!r}: 400", out)
st, out = mcall("POST", "/v1/files", dict(commit, parent="123"), caller=A)
t.ok(st == 404, "an unknown folder: 404", out)
st, out = mcall("POST", "/v1/files", dict(commit, name="x.mp4"), caller=B)
t.ok(st == 404, "bob committing into alice's root: 404 (not 403)", out)
st, f2 = mcall("POST", "/v1/files", {"parent": alice["root"], "name": "copy.mp4",
                                      "blocks": hashes, "type": "video/mp4"}, caller=A)
t.ok(st == 201 and f2["manifest"] == f1["manifest"] and f2["type"] == "video/mp4",
     "the same content again (cached verdict): same manifest", f2)
empty_hash = hashlib.sha256(b"").hexdigest()
call(blockd.sock, "PUT", f"/v1/blocks/{empty_hash}", raw=b"")
st, f3 = mcall("POST", "/v1/files", {"parent": alice["root"], "name": "empty", "blocks": []},
               caller=A)
t.ok(st == 201 and f3["size"] == 0 and f3["sha256"] == empty_hash and f3["state"] == "ready",
     "an empty file", f3)
eicar = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")

# --- one-shot upload ---------------------------------------------------------------------
text = b"hello from curl\n" * 1000
st, out, _ = call(metad.sock, "POST",
                  f"/v1/upload?parent={alice['root']}&name=notes.txt",
                  headers={"X-Strata-Caller": f"user={A}"}, raw=text)
up = json.loads(out)
t.ok(st == 201 and up["size"] == len(text) and up["sha256"] == hashlib.sha256(text).hexdigest()
     and up["type"].startswith("text/plain") and up["state"] == "ready",
     "one-shot upload: stored through blockd and committed", out)
st, body, _ = call(blockd.sock, "GET", f"/v1/content/{up['manifest']}")
t.ok(body == text, "its content is in blockd")


def refused_upload(name):
    """The status of an upload metad refuses before reading its body (it may hang up
    before the body is sent, so this is a raw exchange, not http.client)."""
    req = (f"POST /v1/upload?parent={alice['root']}&name={name} HTTP/1.1\r\nHost: x\r\n"
           f"X-Strata-Caller: user={A}\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")
    out = raw_exchange(metad.sock, req.encode())
    return int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.1 ") else out


t.ok(refused_upload("notes.txt") == 409, "an upload to a taken name: 409")
t.ok(refused_upload("a/b") == 400, "an upload with a bad name: 400")

# --- stat, list, rename, tags, search ----------------------------------------------------
st, out = mcall("GET", "/v1/stat?path=/holiday%20video.MP4", caller=A)
t.ok(st == 200 and out["id"] == f1["id"], "stat by path (case-insensitive)", out)
st, out = mcall("GET", "/v1/stat?path=/" + "a" * 600, caller=A)
t.ok(st == 404, "a path part longer than any name: 404 (not an LMDB key error)", out)
st, out = mcall("POST", "/v1/sessions", {"login": "", "password": "whatever1"})
t.ok(st in (401, 503), "an empty login: refused, not a 500 (fuzz find)", out)
st, folder = mcall("POST", "/v1/folders", {"parent": alice["root"], "name": "Trips"}, caller=A)
st, out = mcall("GET", "/v1/search?q=holi", caller=A)
t.ok(st == 200 and [x["id"] for x in out["items"]][:1] == [f1["id"]],
     "search by prefix finds the video", out)
st, out = mcall("GET", "/v1/search?q=ETE", caller=A)
t.ok(st == 200 and f1["id"] in [x["id"] for x in out["items"]], "and by tag, accents folded",
     out)
st, out = mcall("GET", "/v1/search?q=holiday", caller=B)
t.ok(st == 200 and out["items"] == [], "bob's search does not see alice's files", out)
st, moved = mcall("PATCH", f"/v1/nodes/{f1['id']}", {"parent": folder["id"], "name": "Lisbon.mp4",
                                                     "tags": ["sea"]},
                  caller=A, headers={"If-Match": f"\"{f1['version']}\""})
t.ok(st == 200 and moved["parent"] == folder["id"] and moved["tags"] == ["sea"],
     "move + rename + retag", moved)
st, out = mcall("GET", "/v1/search?q=trips%20lisbon", caller=A)
t.ok([x["id"] for x in out["items"]] == [f1["id"]], "search by folder path + new name", out)
st, out = mcall("GET", "/v1/search?q=holiday", caller=A)
t.ok(out["items"] == [], "the old name no longer matches", out)
st, out = mcall("PATCH", f"/v1/nodes/{f1['id']}", {"name": "x"}, caller=A,
                headers={"If-Match": f"\"{f1['version']}\""})
t.ok(st == 412, "a stale If-Match: 412", out)

# --- processing results --------------------------------------------------------------------
st, out = mcall("PUT", f"/v1/nodes/{f1['id']}/processing",
                {"state": "ready", "renditions": [{"name": "720p", "manifest": "ab" * 32}]})
t.ok(st == 200 and out["state"] == "ready" and out["renditions"][0]["name"] == "720p",
     "transcoded records renditions: ready", out)
st, out = mcall("PUT", f"/v1/nodes/{f1['id']}/processing", {"state": "ready"}, caller=A)
t.ok(st == 403, "users may not set processing results", out)

# --- trash -------------------------------------------------------------------------------
st, out = mcall("DELETE", f"/v1/nodes/{folder['id']}", caller=A)
t.ok(st == 200 and out["trashed"] > 0, "a folder to the trash", out)
st, out = mcall("GET", f"/v1/stat?path=/Trips/Lisbon.mp4", caller=A)
t.ok(st == 404, "its files are gone from paths", out)
st, out = mcall("GET", "/v1/search?q=lisbon", caller=A)
t.ok(out["items"] == [], "and from search", out)
st, out = mcall("GET", "/v1/trash", caller=A)
t.ok([x["id"] for x in out["items"]] == [folder["id"]], "the trash lists the folder", out)
st, again = mcall("POST", "/v1/folders", {"parent": alice["root"], "name": "trips"}, caller=A)
t.ok(st == 201, "its name is free again", again)
st, out = mcall("POST", f"/v1/nodes/{folder['id']}/restore", caller=A)
t.ok(st == 409, "restoring onto a taken name: 409", out)
st, out = mcall("POST", f"/v1/nodes/{folder['id']}/restore", {"name": "Trips 2"}, caller=A)
t.ok(st == 200 and out["name"] == "Trips 2" and "trashed" not in out, "restored under a new name",
     out)
st, out = mcall("GET", "/v1/stat?path=/Trips 2/Lisbon.mp4".replace(" ", "%20"), caller=A)
t.ok(st == 200 and out["id"] == f1["id"], "its files are back", out)
mcall("DELETE", f"/v1/nodes/{folder['id']}", caller=A)
st, out = mcall("DELETE", f"/v1/trash/{folder['id']}", caller=B)
t.ok(st == 404, "bob cannot purge alice's trash", out)
st, out = mcall("DELETE", f"/v1/trash/{folder['id']}", caller=A)
t.ok(st == 200 and out["removed"] == 2, "purge removes the folder and its file", out)
st, out = mcall("GET", f"/v1/nodes/{f1['id']}", caller=A)
t.ok(st == 404, "the file is gone for good", out)
st, out = mcall("DELETE", f"/v1/nodes/{alice['root']}", caller=A)
t.ok(st == 400, "a root folder cannot be trashed", out)

# --- follows and feeds ---------------------------------------------------------------------
st, out = mcall("PUT", "/v1/follows/alice", caller=B)
t.ok(st == 200 and out["following"], "bob follows alice", out)
st, out = mcall("PUT", f"/v1/follows/{B}", caller=B)
t.ok(st == 400, "following yourself: 400", out)
st, shared = mcall("POST", "/v1/folders", {"parent": alice["root"], "name": "Public"}, caller=A)
st, out = mcall("PUT", f"/v1/nodes/{shared['id']}/shares/followers", {"role": "read"}, caller=A)
t.ok(st == 200 and out["grantee"] == "followers", "alice shares a folder with her followers", out)
st, pf = mcall("POST", "/v1/files", {"parent": shared["id"], "name": "sunset.mp4",
                                     "blocks": hashes}, caller=A)
t.ok(st == 201, "and commits a file into it", pf)
ok = wait_until(lambda: any(e["node"] and e["node"]["id"] == pf["id"]
                            for e in mcall("GET", "/v1/feed", caller=B)[1]["items"]), 10)
t.ok(ok, "the file reaches bob's feed (fan-out through the queue)", mcall("GET", "/v1/feed",
                                                                        caller=B))
st, out = mcall("GET", f"/v1/nodes/{pf['id']}", caller=B)
t.ok(st == 200, "and bob, a follower, may read it", out)
st, out = mcall("GET", "/v1/feed", caller=A)
t.ok(st == 200 and out["items"] == [], "alice's own feed stays empty", out)
mcall("DELETE", f"/v1/follows/alice", caller=B)
st, out = mcall("GET", f"/v1/nodes/{pf['id']}", caller=B)
t.ok(st == 404, "after unfollowing, bob no longer sees it", out)
st, out = mcall("GET", "/v1/feed", caller=B)
t.ok(out["items"] == [], "and the feed entry is hidden", out)

# --- events --------------------------------------------------------------------------------
want = {("file.created", f1["id"]), ("file.ready", f1["id"]), ("file.created", up["id"]),
        ("folder.trashed", folder["id"]), ("folder.purged", folder["id"]),
        ("share.added", shared["id"])}


def got():
    with lock:
        return {(e[2]["type"], e[2]["node"]) for e in events}


t.ok(wait_until(lambda: want <= got(), 15), "every change reaches the sink after a retry",
     sorted(want - got()))
with lock:
    keys = [e[1] for e in events]
    paths = {e[0] for e in events}
t.ok(len(keys) == len(set(keys)) and all(k.startswith("evt-") for k in keys) and
     paths == {"/v1/events"}, "each event once after its retry, with an idempotency key",
     keys[:5])
created = [e[2] for e in events if e[2]["type"] == "file.created" and e[2]["node"] == f1["id"]]
t.ok(created and created[0]["data"]["manifest"] == f1["manifest"] and
     created[0]["user"] == A, "file.created carries the manifest and the user", created)
st, out = mcall("GET", "/v1/meta/stats")
t.ok(st == 200 and out["nodes"] >= 5, "stats", out)


def scrape():
    _, text, _ = call(metad.sock, "GET", "/metrics")
    return {line.split()[0]: float(line.split()[1]) for line in text.decode().splitlines()
            if line and not line.startswith("#")}


# The outbox drains (each event's first delivery was refused, so retries are still due).
wait_until(lambda: scrape().get("strata_metad_outbox_pending") == 0, 15)
metrics = scrape()
t.ok(metrics.get("strata_metad_nodes") == out["nodes"] and
     metrics.get("strata_metad_group_commits_total", 0) > 0 and
     metrics.get("strata_metad_outbox_pending") == 0 and "strata_metad_fanout_pending" in metrics,
     "metrics: nodes, group commits, outbox and fan-out backlogs",
     {k: v for k, v in metrics.items() if k.startswith("strata_metad")})

# --- a full map: 507, nothing half-written, reads still served ------------------------
d2 = tempdir()
small = write_config(os.path.join(d2, "metad.conf"), "metad", os.path.join(d2, "run"), d2,
                     metad_auth(d2) + "[meta]\nmax_map_bytes = 1048576\n")
tiny = Daemon("metad", small, os.path.join(d2, "run"))
t.ok(tiny.wait_ready(), "a metad with a 1 MiB map starts", tiny.output())


def tcall(method, path, body=None, caller=None):
    st, out, _ = call(tiny.sock, method, path, body, caller)
    return st, json.loads(out) if out else None


st, u = tcall("POST", "/v1/admin/users", {"name": "tina", "email": "t@example.org",
                                         "password": "correct horse"})
made, full = [], None
for i in range(20000):  # bounded: 1 MiB holds a few thousand folders
    st, out = tcall("POST", "/v1/folders", {"parent": u["root"], "name": f"folder {i:05d} " +
                                             "x" * 200}, caller=u["id"])
    if st != 201:
        full = (i, st, out)
        break
    made.append(out["id"])
t.ok(full is not None and full[1] == 507 and full[2]["error"]["code"] == "insufficient_storage",
     "filling the map ends in 507 insufficient_storage", full and full[1:])
if full:
    st, out = tcall("GET", f"/v1/stat?path=/folder%20{full[0]:05d}%20" + "x" * 200,
                    caller=u["id"])
    t.ok(st == 404, "the refused folder left nothing behind", out)
st, out = tcall("GET", f"/v1/nodes/{made[-1]}", caller=u["id"]) if made else (0, None)
t.ok(st == 200, "the last acknowledged folder is there and reads are served", out)
tiny.signal(9)
tiny.proc.wait()
again = Daemon("metad", small, os.path.join(d2, "run"))
t.ok(again.wait_ready(), "a full store opens again", again.output())
tiny = again
st, out = tcall("GET", f"/v1/nodes/{made[-1]}/children", caller=u["id"]) if made else (0, None)
t.ok(st == 200, "and serves its tree", out)

# blockd down: a commit is answered 502 in the error shape (metad asks it from its loop, which
# goes on serving); blockd back on the same socket: commits work again.
blockd.stop()
st, out = mcall("POST", "/v1/files", dict(commit, name="while-down.mp4"), caller=A)
t.ok(st == 502 and out["error"]["code"] == "blockd_unavailable", "blockd down: commit 502", out)
st, out = mcall("GET", f"/v1/nodes/{alice['root']}", caller=A)
t.ok(st == 200, "and metad goes on serving", out)
blockd = Daemon("blockd", bconf, rundir)
t.ok(blockd.wait_ready(), "blockd starts again", blockd.output())
st, out = mcall("POST", "/v1/files", dict(commit, name="after-restart.mp4"), caller=A)
t.ok(st == 201 and out["manifest"] == f1["manifest"], "then commits work again", out)

sink.shutdown()
t.done()
