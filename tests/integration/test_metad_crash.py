#!/usr/bin/env python3
"""strata-metad killed with SIGKILL in the middle of a burst of file commits, renames and
trashes (8 client threads, real blockd, an event sink of this test), twice on the same state:
after each restart every acknowledged write is there with the fields it was acknowledged
with, nothing is half-written (listings, stat by id and by path, search, trash, stats and
blockd's manifests agree), a write that was never acknowledged is either wholly there or
wholly absent, and the event outbox (same transaction as the write) delivers an event for
every acknowledged change at least once, a re-delivery carrying the same Idempotency-Key."""

import collections
import concurrent.futures
import hashlib
import http.server
import json
import os
import random
import signal
import threading
import time
import traceback
import urllib.parse

from harness import (Daemon, Tap, UnixHTTPConnection, metad_auth, serve_unix, tempdir,
                     write_config)

THREADS = 8
KILL_AFTER_S = 1.5  # the burst runs at least this long before kill -9,
KILL_MIN_ACKED = 100  # and until this many writes were acknowledged (a loaded machine is slow),
KILL_LATEST_S = 10  # but no longer than this
MAX_OPS = 3000  # per thread and round: a bound, never reached before the kill
BURST_LIMIT_S = 20  # per thread and round: a bound, never reached before the kill
ROUNDS = 2
# An event leased by the killed metad but never POSTed stays leased until its visibility
# timeout (30 s, outbox.cc queue_options) runs out: the bound covers that, plus the backlog.
EVENT_WAIT_S = 45
FOLDERS = ["Alpha", "Beta", "Gamma", "Delta"]

t = Tap()


class Abort(Exception):
    """A daemon did not (re)start: already reported, the remaining checks cannot run."""


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"{self.status} {self.body[:600]!r}"


def call(sock, method, path, js=None, raw=None, headers=None, timeout=10):
    h = dict(headers or {})
    body = json.dumps(js).encode() if js is not None else raw
    if js is not None:
        h["Content-Type"] = "application/json"
    conn = UnixHTTPConnection(sock, timeout)
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return Reply(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def q(s):
    return urllib.parse.quote(s, safe="")


def fold(name):
    return name.lower()  # our names are ASCII


d = tempdir()
rundir = os.path.join(d, "run")

# --- the event sink: records every POST and answers 200 -----------------------------------
deliveries = []  # (path, Idempotency-Key, raw body, parsed body)
dlock = threading.Lock()


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        with dlock:
            deliveries.append((self.path, self.headers.get("Idempotency-Key"), body, parsed))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass



sink_path = os.path.join(d, "sink.sock")
sink = serve_unix(sink_path, Sink)

bconf = write_config(os.path.join(d, "blockd.conf"), "blockd", rundir, d)
blockd_sock = os.path.join(rundir, "blockd.sock")
mconf = write_config(os.path.join(d, "metad.conf"), "metad", rundir, d,
                     metad_auth(d) + f'[blockd]\nsocket = "unix:{blockd_sock}"\n'
                     f'[events]\nsinks = ["test unix:{sink_path}"]\n')
blockd = None
metad = None
old_logs = []  # the logs of killed metads (a new Daemon truncates its log file)


def start_metad():
    global metad
    if metad is not None:
        old_logs.append(metad.output())
        metad.log.close()
    metad = Daemon("metad", mconf, rundir)
    if not metad.wait_ready(20):
        t.ok(False, "metad starts", metad.output())
        raise Abort()


def api(method, path, js=None, who=None, headers=None, timeout=10):
    h = dict(headers or {})
    if who is not None:
        h["X-Strata-Caller"] = f"user={who}"
    return call(metad.sock, method, path, js=js, headers=h, timeout=timeout)


def pages(path, who):
    """Every item of a paged listing; None if a page was refused."""
    out, cursor = [], ""
    for _ in range(1000):
        r = api("GET", f"{path}?limit=1000&cursor={q(cursor)}", who=who)
        if r.status != 200:
            return None
        out += r.json["items"]
        if r.json["next_cursor"] is None:
            return out
        cursor = r.json["next_cursor"]
    return None


def log_tail(text, n=40):
    return "\n".join(text.splitlines()[-n:])


# --- the model of what the clients did ------------------------------------------------------
class File:
    """One file of a client thread: its commit request, the answers of its acknowledged
    operations in order (commit, rename, trash), and the one operation left without an answer
    when metad died (if any)."""

    def __init__(self, name, commit, combo):
        self.name = name
        self.commit = commit
        self.combo = combo
        self.acked = []  # (op, request body, answer json)
        self.pending = None  # (op, request body) sent, no answer

    @property
    def last(self):
        return self.acked[-1][2] if self.acked else None

    def candidates(self):
        """States the file may be in now: the last acknowledged one, or the pending
        operation applied to it. A dict with only some fields names only those."""
        out = []
        if self.acked:
            out.append(("acked", self.last))
        if self.pending:
            op, body = self.pending
            if op == "commit":
                out.append(("absent", None))
                out.append(("committed", {"parent": body["parent"], "name": body["name"],
                                          "size": body["size"], "sha256": body["sha256"],
                                          "kind": "file", "version": 1}))
            elif op == "rename":
                c = dict(self.last)
                c.update(body)
                c["version"] = self.last["version"] + 1
                out.append(("renamed", {k: c[k] for k in ("id", "parent", "name", "version",
                                                           "size", "sha256", "manifest")}))
            elif op == "trash":
                c = {k: self.last[k] for k in ("id", "parent", "name", "size", "sha256",
                                               "manifest")}
                c["version"] = self.last["version"] + 1
                c["state"] = "deleted"
                out.append(("trashed", c))
        return out


def matches(actual, cand):
    what, c = cand
    if what == "absent":
        return actual is None
    if actual is None:
        return False
    if what == "acked":
        return actual == c  # every field, exactly as acknowledged
    return all(actual.get(k) == v for k, v in c.items()) and (
        ("trashed" in actual) == (what == "trashed"))


files = {}  # name -> File, every round
acks = [0]  # acknowledged writes of the current round
alock = threading.Lock()
refused = []  # answers other than 2xx during a burst: (round, op, request, reply)
conn_errors = collections.Counter()


def worker(rnd, k, user, folder_ids, combos, ended):
    rng = random.Random(rnd * 100 + k)
    mine = []  # my acknowledged, not trashed files
    t_end = time.monotonic() + BURST_LIMIT_S
    for i in range(MAX_OPS):
        if time.monotonic() > t_end:
            ended[k] = ("time", time.monotonic())
            return
        f, op = None, "commit"
        if mine and i % 5 == 4:
            op = "rename"
        elif mine and i % 7 == 6:
            op = "trash"
        if op == "commit":
            ci = (i * 7 + k) % len(combos)
            name = f"r{rnd}t{k}n{i:05d}.bin"
            body = {"parent": folder_ids[(i + k) % len(folder_ids)], "name": name,
                    "blocks": combos[ci]["blocks"], "size": combos[ci]["size"],
                    "sha256": combos[ci]["sha256"], "type": "application/octet-stream"}
            f = File(name, body, ci)
            files[name] = f  # one thread per name: no lock needed for the dict entry
            method, path, hdr = "POST", "/v1/files", {}
        else:
            f = mine[rng.randrange(len(mine))]
            hdr = {"If-Match": f'"{f.last["version"]}"'}
            if op == "rename":
                base = f.name.split(".")[0]
                body = {"name": f"{base}m{i}.bin"}
                if rng.random() < 0.5:
                    body["parent"] = folder_ids[rng.randrange(len(folder_ids))]
                method, path = "PATCH", f"/v1/nodes/{f.last['id']}"
            else:
                body = None
                method, path = "DELETE", f"/v1/nodes/{f.last['id']}"
        try:
            r = api(method, path, js=body, who=user, headers=hdr)
        except Exception as e:  # the daemon is gone
            f.pending = (op, body or {})
            with alock:
                conn_errors[type(e).__name__] += 1
            ended[k] = ("error", time.monotonic())
            return
        if not 200 <= r.status < 300 or not isinstance(r.json, dict):
            refused.append((rnd, op, method, path, body, r))
            ended[k] = ("refused", time.monotonic())
            return
        f.acked.append((op, body, r.json))
        with alock:
            acks[0] += 1
        if op == "commit":
            mine.append(f)
        elif op == "trash":
            mine.remove(f)
    ended[k] = ("count", time.monotonic())


# --- checks after a restart --------------------------------------------------------------
def stat_all(ids, who):
    def one(nid):
        r = api("GET", f"/v1/nodes/{nid}", who=who)
        return nid, (r.json if r.status == 200 else None), r

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        return {nid: (j, r) for nid, j, r in ex.map(one, ids)}


def check_state(rnd, user, root, folder_ids, combos, manifests):
    tag = f"round {rnd}:"
    all_files = list(files.values())
    acked_files = [f for f in all_files if f.acked]
    # The present state of every file we know an id of (acknowledged commits).
    st = stat_all([f.acked[0][2]["id"] for f in acked_files], user)
    bad_commit, bad_state, bad_rename, bad_trash, pending_seen = [], [], [], [], 0
    for f in acked_files:
        cid = f.acked[0][2]["id"]
        actual, r = st[cid]
        c0 = f.acked[0][2]
        if actual is None or any(actual.get(k) != c0[k] for k in
                                 ("id", "kind", "owner", "size", "sha256", "manifest", "type",
                                  "created")) or actual.get("version", 0) < c0["version"]:
            bad_commit.append((f.name, c0, r))
        cands = f.candidates()
        if not any(matches(actual, c) for c in cands):
            bad_state.append((f.name, cands, r))
        elif f.pending and not matches(actual, cands[0]):
            pending_seen += 1
        # every acknowledged rename shows its name, or a later state does
        for j, (op, body, ans) in enumerate(f.acked):
            later = [("acked", a) for _, _, a in f.acked[j:]] + cands[1:]
            if op == "rename" and (actual is None or not any(
                    matches(actual, c) for c in later)):
                bad_rename.append((f.name, ans, r))
            if op == "trash" and (actual is None or "trashed" not in actual):
                bad_trash.append((f.name, ans, r))
    n_commits = len(acked_files)
    n_renames = sum(op == "rename" for f in acked_files for op, _, _ in f.acked)
    n_trashes = sum(op == "trash" for f in acked_files for op, _, _ in f.acked)
    t.ok(not bad_commit, f"{tag} all {n_commits} acknowledged commits are there (stat by id: "
         "same size, sha256, manifest, type, created)", bad_commit[:3])
    t.ok(not bad_state, f"{tag} every file is in its last acknowledged state (every field "
         f"equal: name, parent, version, ...) or its unanswered operation's ({pending_seen} "
         "were)", bad_state[:3])
    t.ok(not bad_rename, f"{tag} all {n_renames} acknowledged renames/moves show their new name "
         "and folder (or a later state)", bad_rename[:3])
    trash = pages("/v1/trash", user)
    trash_ids = {x["id"] for x in trash or []}
    bad_trash += [(f.name, "not listed in the trash") for f in acked_files
                  if any(op == "trash" for op, _, _ in f.acked)
                  and f.acked[0][2]["id"] not in trash_ids]
    t.ok(trash is not None and not bad_trash, f"{tag} all {n_trashes} acknowledged trashes are "
         "in the trash", bad_trash[:3])

    # Nothing half-written: the listings, stat by id and by path, search and trash agree.
    by_id = {f.acked[0][2]["id"]: f for f in acked_files}
    by_name = {f.name: f for f in all_files}  # commit names (renames keep the token)
    listings = {}
    for fid in [root] + folder_ids:
        listings[fid] = pages(f"/v1/nodes/{fid}/children", user)
    t.ok(all(v is not None for v in listings.values()), f"{tag} every folder lists",
         [k for k, v in listings.items() if v is None])
    entries = [(fid, e) for fid, items in listings.items() for e in items or []]
    ids_seen = collections.Counter(e["id"] for _, e in entries)
    dup_ids = [i for i, c in ids_seen.items() if c > 1]
    dup_names = []
    for fid, items in listings.items():
        c = collections.Counter(fold(e["name"]) for e in items or [])
        dup_names += [(fid, n) for n, n_ in c.items() if n_ > 1]
    t.ok(not dup_ids and not dup_names, f"{tag} {len(entries)} listed entries: no id twice, no "
         "two entries with the same name in a folder", (dup_ids[:3], dup_names[:3]))
    listed_files = [(fid, e) for fid, e in entries if e["kind"] == "file"]
    half, unknown, unacked_present = [], [], []
    for fid, e in listed_files:
        combo_ok = False
        f = by_id.get(e["id"])
        if f is None:  # not acknowledged: must be a whole commit whose answer was lost
            f = by_name.get(e["name"])
            if f is None or f.acked or not f.pending or f.pending[0] != "commit":
                unknown.append(e)
                continue
            unacked_present.append((f, e))
        cb = combos[f.combo]
        combo_ok = (e.get("size") == cb["size"] and e.get("sha256") == cb["sha256"]
                    and isinstance(e.get("manifest"), str) and len(e["manifest"]) == 64
                    and e.get("parent") == fid and "trashed" not in e
                    and e.get("state") == "ready")
        if not combo_ok:
            half.append(e)
    t.ok(not unknown, f"{tag} every listed file is one a client committed", unknown[:3])
    t.ok(not half, f"{tag} every listed file has its manifest, size, sha256, parent, ready "
         "state", half[:3])
    lst = stat_all([e["id"] for _, e in entries], user)
    differ = [(e, lst[e["id"]][1]) for _, e in entries if lst[e["id"]][0] != e]
    t.ok(not differ, f"{tag} every listing entry stats by id to the same node", differ[:3])
    names_of = {root: ""}
    for fid, e in entries:
        if e["kind"] == "folder":
            names_of[e["id"]] = e["name"]

    def by_path(item):
        fid, e = item
        r = api("GET", "/v1/stat?path=" + q(f"/{names_of[fid]}/{e['name']}".replace("//", "/")),
                who=user)
        return e, r

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        paths = list(ex.map(by_path, [x for x in entries if x[0] in names_of]))
    differ = [(e, r) for e, r in paths if r.status != 200 or r.json != e]
    t.ok(len(paths) == len(entries) and not differ,
         f"{tag} GET /v1/stat by path agrees with the listing for all {len(paths)} entries",
         differ[:3])
    # Present, not trashed, acknowledged files are listed where they should be; trashed
    # files are not listed.
    listed_ids = {e["id"]: fid for fid, e in entries}
    misplaced = []
    for f in acked_files:
        actual = st[f.acked[0][2]["id"]][0]
        if actual is None:
            continue
        where = listed_ids.get(actual["id"])
        if ("trashed" in actual) != (where is None) or (where and where != actual["parent"]):
            misplaced.append((f.name, actual, where))
    t.ok(not misplaced, f"{tag} every acknowledged file is listed in its folder exactly when "
         "not trashed", misplaced[:3])
    expected_trash = {f.acked[0][2]["id"] for f in acked_files
                      if st[f.acked[0][2]["id"]][0] and "trashed" in st[f.acked[0][2]["id"]][0]}
    t.ok(trash is not None and trash_ids == expected_trash and all(
        x == st[x["id"]][0] for x in trash if x["id"] in st),
        f"{tag} the trash holds exactly the {len(expected_trash)} trashed files, as they stat",
        (sorted(trash_ids ^ expected_trash)[:5]))

    # Unacknowledged commits: wholly there (listed, stat by path, fields of the request) or
    # wholly absent (no listing entry, stat by path 404).
    partial = []
    n_unacked = 0
    for f in all_files:
        if f.acked or not f.pending or f.pending[0] != "commit":
            continue
        n_unacked += 1
        body = f.pending[1]
        folder = names_of.get(body["parent"], None)
        r = api("GET", "/v1/stat?path=" + q(f"/{folder}/{f.name}"), who=user)
        listed = [e for fid, e in listed_files if e["name"] == f.name]
        if r.status == 404 and not listed:
            continue
        cand = f.candidates()[1]
        if not (r.status == 200 and matches(r.json, cand) and listed == [r.json]):
            partial.append((f.name, body, r, listed))
        else:
            f.unacked_node = r.json
    t.ok(not partial, f"{tag} each of the {n_unacked} unanswered commits so far is wholly "
         f"there ({len(unacked_present)}) or wholly absent", partial[:3])

    # Search finds each present file by its name (one unique token), trashed ones not.
    present = [st[f.acked[0][2]["id"]][0] for f in acked_files
               if st[f.acked[0][2]["id"]][0] is not None]
    present += [e for _, e in unacked_present]

    def search(node):
        token = node["name"].split(".")[0]
        r = api("GET", f"/v1/search?q={q(token)}&limit=1000", who=user)
        ids = [x["id"] for x in (r.json or {}).get("items", [])]
        return node, r.status == 200 and ((node["id"] in ids) != ("trashed" in node)), r

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        found = list(ex.map(search, present))
    missed = [(n["id"], n["name"], "trashed" in n, r) for n, ok, r in found if not ok]
    t.ok(not missed, f"{tag} search finds each of the {len(present)} files by its name "
         "(and no trashed one)", missed[:3])

    # blockd serves every manifest a file names, byte for byte.
    combo_of = {fid: f for fid, f in by_id.items()}
    combo_of.update({e["id"]: f for f, e in unacked_present})
    for e in [e for _, e in listed_files] + [x for x in trash or []]:
        f = combo_of.get(e["id"])
        if f is not None:
            manifests.setdefault(e["manifest"], set()).add(f.combo)
    bad_manifest = []
    for m, cs in manifests.items():
        r = call(blockd.sock, "GET", f"/v1/content/{m}", timeout=30)
        if len(cs) != 1 or r.status != 200 or r.body != combos[next(iter(cs))]["data"]:
            bad_manifest.append((m, cs, r.status, len(r.body)))
    t.ok(manifests and not bad_manifest, f"{tag} blockd serves each of the {len(manifests)} "
         "manifests as the content of its blocks", bad_manifest[:3])

    r = api("GET", "/v1/meta/stats")
    want = 1 + len(folder_ids) + len(listed_files) + len(trash_ids)
    t.ok(r.status == 200 and r.json.get("nodes") == want,
         f"{tag} stats count {want} nodes: the root, the folders, listed files, trash", r)
    return present


def check_events(rnd, acked_files, bound):
    """Events for every acknowledged change, at least once; duplicates the same event."""
    tag = f"round {rnd}:"
    want = set()
    for f in acked_files:
        for op, _, ans in f.acked:
            typ = {"commit": "file.created", "rename": "file.updated", "trash": "file.trashed"}
            want.add((typ[op], ans["id"], ans["version"]))
    for f in files.values():
        n = getattr(f, "unacked_node", None)
        if n is not None:
            want.add(("file.created", n["id"], 1))

    def got():
        with dlock:
            return {(p[3]["type"], p[3]["node"], p[3]["data"].get("version"))
                    for p in deliveries if isinstance(p[3], dict)}

    t0 = time.monotonic()
    deadline = t0 + bound
    while time.monotonic() < deadline and not want <= got():
        time.sleep(0.1)
    took = time.monotonic() - t0
    missing = sorted(want - got())
    t.ok(not missing, f"{tag} the sink got an event for each of the {len(want)} acknowledged "
         f"changes (file.created/updated/trashed) within {bound} s (took {took:.1f} s)",
         f"{len(missing)} missing: {missing[:5]}\nmetad log:\n{log_tail(metad.output())}")
    with dlock:
        ds = list(deliveries)
    by_key = collections.defaultdict(set)
    ids_of = collections.defaultdict(set)
    bad = []
    for path, key, raw, p in ds:
        if path != "/v1/events" or not isinstance(p, dict) or key != f"evt-{p.get('id')}":
            bad.append((path, key, raw[:200]))
            continue
        by_key[key].add(raw)
        ids_of[(p["type"], p["node"], p["data"].get("version"))].add(p["id"])
    bad += [(k, len(v)) for k, v in by_key.items() if len(v) != 1]
    bad += [(k, sorted(v)) for k, v in ids_of.items() if len(v) != 1]
    dups = len(ds) - len(by_key)
    t.ok(not bad, f"{tag} {len(ds)} deliveries of {len(by_key)} events ({dups} re-deliveries): "
         "each with Idempotency-Key evt-<id>; a re-delivery has the same key and body; one "
         "event per change", bad[:5])
    # No event without its change: each file.created names a node a client committed, with
    # the fields of that commit.
    created = [p for _, _, _, p in ds if isinstance(p, dict) and p.get("type") == "file.created"]
    node_of = {}
    for f in files.values():
        if f.acked:
            node_of[f.acked[0][2]["id"]] = f.acked[0][2]
        elif getattr(f, "unacked_node", None):
            node_of[f.unacked_node["id"]] = f.unacked_node
    phantom = []
    for p in created:
        n = node_of.get(p["node"])
        dd = p["data"]
        if n is None or any(dd.get(k) != n[k] for k in ("name", "parent", "size", "sha256",
                                                         "manifest", "version")):
            phantom.append((p, n))
    t.ok(not phantom, f"{tag} each of the {len(created)} file.created events is of a commit "
         "that is there, with its fields", phantom[:3])


def main():
    global blockd
    blockd = Daemon("blockd", bconf, rundir)
    if not t.ok(blockd.wait_ready(), "blockd starts", blockd.output()):
        raise Abort()
    start_metad()
    r = api("POST", "/v1/admin/users", js={"name": "alice", "email": "alice@example.org",
                                            "password": "correct horse"})
    if not t.ok(r.status == 201, "a user", r):
        raise Abort()
    user, root = r.json["id"], r.json["root"]
    folder_ids = []
    for name in FOLDERS:
        r = api("POST", "/v1/folders", js={"parent": root, "name": name}, who=user)
        if r.status != 201:
            t.ok(False, f"folder {name}", r)
            raise Abort()
        folder_ids.append(r.json["id"])
    t.ok(True, f"{len(FOLDERS)} folders")

    # A few blocks in blockd, and block lists of files made of them.
    rng = random.Random(4)
    blocks = [rng.randbytes(n) for n in (1000, 3000, 17000, 65536, 1)]
    hashes = [hashlib.sha256(b).hexdigest() for b in blocks]
    puts = [call(blockd.sock, "PUT", f"/v1/blocks/{h}", raw=b) for h, b in zip(hashes, blocks)]
    t.ok(all(200 <= p.status < 300 for p in puts), f"{len(blocks)} blocks stored in blockd",
         puts)
    combos = []
    for idx in ([0], [1], [0, 1], [2, 0, 3], [3, 3], [4], [1, 2, 4, 0]):
        data = b"".join(blocks[i] for i in idx)
        combos.append({"blocks": [hashes[i] for i in idx], "size": len(data),
                       "sha256": hashlib.sha256(data).hexdigest(), "data": data})

    manifests = {}
    for rnd in range(1, ROUNDS + 1):
        ended = {}
        acks[0] = 0
        proc = metad.proc
        threads = [threading.Thread(target=worker, daemon=True,
                                    args=(rnd, k, user, folder_ids, combos, ended))
                   for k in range(THREADS)]
        t0 = time.monotonic()
        for th in threads:
            th.start()
        time.sleep(KILL_AFTER_S)
        while acks[0] < KILL_MIN_ACKED and time.monotonic() < t0 + KILL_LATEST_S and ended == {}:
            time.sleep(0.02)
        burst_s = time.monotonic() - t0
        running_at_kill = THREADS - len(ended)
        kill_t = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        for th in threads:
            th.join(30)
        try:
            proc.wait(5)
        except Exception:
            pass
        round_files = [f for f in files.values() if f.name.startswith(f"r{rnd}t")]
        n_acked = sum(len(f.acked) for f in round_files)
        t.ok(not any(th.is_alive() for th in threads), f"round {rnd}: the client threads end",
             time.monotonic() - t0)
        t.ok(proc.returncode == -signal.SIGKILL and running_at_kill == THREADS
             and all(v[0] == "error" and v[1] >= kill_t for v in ended.values())
             and len(ended) == THREADS,
             f"round {rnd}: metad killed with SIGKILL after {burst_s:.1f} s while all "
             f"{THREADS} threads were writing ({n_acked} writes acknowledged)",
             (proc.returncode, running_at_kill, ended, dict(conn_errors)))
        t.ok(not refused, f"round {rnd}: no write of the burst was refused",
             refused[:3] + [log_tail(metad.output())])
        per_thread = collections.Counter(f.name.split("n")[0] for f in round_files if f.acked)
        t.ok(len(per_thread) == THREADS and n_acked >= KILL_MIN_ACKED,
             f"round {rnd}: every thread had writes acknowledged before the kill",
             per_thread)
        failed_before = t.failed
        start_metad()
        check_state(rnd, user, root, folder_ids, combos, manifests)
        # metad writes again after the kill (and the file joins the model)
        name = f"after{rnd}.bin"
        body = {"parent": root, "name": name, "blocks": combos[0]["blocks"],
                "type": "application/octet-stream"}
        r = api("POST", "/v1/files", js=body, who=user)
        if t.ok(r.status == 201, f"round {rnd}: metad commits again after the restart", r):
            f = File(name, body, 0)
            f.acked.append(("commit", body, r.json))
            files[name] = f
        check_events(rnd, [f for f in files.values() if f.acked], EVENT_WAIT_S)
        if t.failed > failed_before:
            print(f"# the killed metad's log (round {rnd}):", flush=True)
            for line in log_tail(old_logs[-1], 60).splitlines():
                print(f"#   {line}", flush=True)

    rc, _ = metad.stop()
    t.ok(rc == 0, "metad stops cleanly at the end", metad.output())
    rc, _ = blockd.stop()
    t.ok(rc == 0, "blockd stops cleanly at the end", blockd.output())


try:
    main()
except Abort:
    pass
except Exception:
    t.ok(False, "the test ran to its end", traceback.format_exc())
sink.shutdown()
t.done()
