#!/usr/bin/env python3
"""Strata API v1 through strata-gatewayd, with the route table of strata-api(7): real
strata-metad and strata-blockd behind a real gateway that verifies session tokens. For every
published route, a data-driven matrix of callers (anonymous, a forged and an expired session
token, a revoked API key, user A, user B on A's things, A's read-write and read-only API keys,
and the operator on the daemon's own socket where that applies) against the status each must
get; each cell is one TAP check. Then: what is not published stays unreachable, a client's
X-Strata-Caller is never honoured, sign-out, disabled users, and the route table of the
gatewayd.conf(5) example."""

import base64
import ctypes
import ctypes.util
import hashlib
import http.client
import json
import os
import re
import socket
import time
import traceback

from harness import (Daemon, Tap, UnixHTTPConnection, free_port, metad_auth, tempdir,
                     write_config)

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")

# --- the route table, as strata-api(7) gives it ------------------------------------------
# /run/strata/ is replaced by this test's runtime directory; the check below compares these
# lines with the page's ROUTING example, so the table tested is the table documented.
POOLS = ["metad unix:/run/strata/metad.sock",
         "blockd unix:/run/strata/blockd.sock"]
ROUTES = [
    "/v1/users pool=metad methods=GET,POST auth=none",
    "/v1/sessions pool=metad methods=POST,DELETE auth=none",
    "/v1/links pool=metad methods=GET auth=none",
    "/v1/keys pool=metad methods=GET,POST,DELETE auth=required",
    "/v1/folders pool=metad methods=POST auth=required",
    "/v1/files pool=metad methods=POST auth=required",
    "/v1/upload pool=metad methods=POST auth=required",
    "/v1/stat pool=metad methods=GET auth=required",
    "/v1/nodes pool=metad auth=required",
    "/v1/trash pool=metad methods=GET,DELETE auth=required",
    "/v1/shared pool=metad methods=GET auth=required",
    "/v1/search pool=metad methods=GET auth=required",
    "/v1/follows pool=metad methods=GET,PUT,DELETE auth=required",
    "/v1/followers pool=metad methods=GET auth=required",
    "/v1/feed pool=metad methods=GET auth=required",
    "/v1/blocks pool=blockd methods=PUT,POST auth=required",
    "/c pool=blockd methods=GET,HEAD auth=none",
]
MAX_BODY = 4194304  # [http] max_body_bytes of the page's example: one whole block

page_path = os.path.join(os.environ.get("STRATA_SOURCE_ROOT", ""), "man",
                         "strata-api.7.scd.in")
try:
    with open(page_path, encoding="utf-8") as f:
        page = f.read()
    block = page[page.index("[proxy]\n"):]
    block = block[:block.index("```")]
    def quoted(key):  # the strings of the TOML list `key = [...]`
        return re.findall(r'"([^"]*)"', block[block.index(key + " = ["):].split("]", 1)[0])

    page_pools, page_routes = quoted("pools"), quoted("routes")
    page_body = re.search(r"max_body_bytes = (\d+)", page[:page.index("[proxy]\n")])
    page_ok = (page_pools == POOLS and page_routes == ROUTES and page_body is not None
               and int(page_body.group(1)) == MAX_BODY)
    page_detail = (page_pools, page_routes, page_body and page_body.group(0))
except (OSError, ValueError) as e:
    page_ok, page_detail = False, e
t.ok(page_ok, "the route table tested is the one strata-api(7) documents", page_detail)

# --- the daemons ---------------------------------------------------------------------------
url_key = os.path.join(d, "blockd-url.key")
with open(url_key, "wb") as f:
    f.write(os.urandom(32))
bconf = write_config(os.path.join(d, "blockd.conf"), "blockd", rundir, d,
                     f'[verify]\nclamav_db_dir = "{d}/no-clamav"\n'
                     f'[signing]\nkey_file = "{url_key}"\n')
blockd = Daemon("blockd", bconf, rundir)
t.ok(blockd.wait_ready(), "blockd starts", blockd.output())
mconf = write_config(os.path.join(d, "metad.conf"), "metad", rundir, d,
                     metad_auth(d) + f'[blockd]\nsocket = "unix:{blockd.sock}"\n')
metad = Daemon("metad", mconf, rundir)
t.ok(metad.wait_ready(), "metad starts", metad.output())

# The session key's public half, for the gateway (what stratactl auth public-key prints),
# and a signer of our own with the same seed, to mint an expired but genuine token.
with open(os.path.join(d, "session.key")) as f:
    seed = bytes.fromhex(f.read().strip())
sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
sodium.sodium_init()
pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(64)
sodium.crypto_sign_seed_keypair(pk, sk, seed)
with open(os.path.join(d, "session.pub"), "w") as f:
    f.write(pk.raw.hex() + "\n")


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def mint(user, session, iat, exp):
    claims = json.dumps({"sub": int(user), "sid": int(session), "iat": iat, "exp": exp,
                         "scp": ["files:read", "files:write"]}, separators=(",", ":"))
    signed = "st1." + hashlib.sha256(pk.raw).hexdigest()[:16] + "." + b64url(claims.encode())
    sig = ctypes.create_string_buffer(64)
    sodium.crypto_sign_detached(sig, None, signed.encode(), ctypes.c_ulonglong(len(signed)), sk)
    return signed + "." + b64url(sig.raw)


def claims_of(token):
    part = token.split(".")[2]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def gateway_conf(name, routes, keys=True):
    port = free_port()
    pools = [p.replace("unix:/run/strata/", f"unix:{rundir}/") for p in POOLS]
    os.makedirs(os.path.join(d, "web"), exist_ok=True)
    extra = (f"[http]\nmax_body_bytes = {MAX_BODY}\n"
             f'[public]\nlisten = ["127.0.0.1:{port}"]\nweb_root = "{d}/web"\n'
             f"[proxy]\npools = {json.dumps(pools)}\nroutes = {json.dumps(routes)}\n")
    # API keys are checked with metad (the default api_key_verifier, here in this test's
    # runtime directory).
    extra += f'[auth]\napi_key_verifier = "unix:{rundir}/metad.sock"\n'
    if keys:
        extra += f'session_public_keys_file = "{d}/session.pub"\n'
    grun = os.path.join(d, name)
    return write_config(os.path.join(d, name + ".conf"), "gatewayd", grun, d, extra), grun, port


gconf, grun, port = gateway_conf("gw", ROUTES)
gw = Daemon("gatewayd", gconf, grun)
t.ok(gw.wait_ready(), "gatewayd starts with the table", gw.output())


# --- clients -------------------------------------------------------------------------------
def answer(r):
    data = r.read()
    try:
        j = json.loads(data) if data else None
    except ValueError:
        j = None
    return r.status, {k.lower(): v for k, v in r.getheaders()}, j, data


def encode(body):
    if body is None or isinstance(body, bytes):
        return body, {}
    return json.dumps(body).encode(), {"Content-Type": "application/json"}


def gcall(method, path, body=None, auth=None, headers=None, gport=None):
    """Through the gateway: (status, headers, json, raw body)."""
    data, h = encode(body)
    h.update(headers or {})
    if auth:
        h["Authorization"] = "Bearer " + auth
    c = http.client.HTTPConnection("127.0.0.1", gport or port, timeout=20)
    try:
        c.request(method, path, body=data, headers=h)
        return answer(c.getresponse())
    finally:
        c.close()


def ucall(sock, method, path, body=None, user=None, headers=None):
    """Straight to a daemon's unix socket (fixtures and the operator)."""
    data, h = encode(body)
    h.update(headers or {})
    if user:
        h["X-Strata-Caller"] = f"user={user}"
    c = UnixHTTPConnection(sock, timeout=20)
    try:
        c.request(method, path, body=data, headers=h)
        return answer(c.getresponse())
    finally:
        c.close()


def raw_tcp(data, gport=None):
    """Raw bytes to the gateway (it may answer and hang up before all are sent); what came
    back, within 20 s."""
    s = socket.create_connection(("127.0.0.1", gport or port), timeout=20)
    out = b""
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        while chunk := s.recv(65536):
            out += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    finally:
        s.close()
    return out


def must(result, want, what):
    """A fixture step: raises when it fails (the setup's or the cell's check fails)."""
    if result[0] != want:
        raise RuntimeError(f"fixture {what}: {result[0]} {result[3][:300]!r}")
    return result[2]


def error_shape(j):
    return (isinstance(j, dict) and isinstance(j.get("error"), dict) and
            isinstance(j["error"].get("code"), str) and isinstance(j["error"].get("message"), str))


PASSWORD = "correct horse battery"
counter = [0]


def fresh(prefix):
    counter[0] += 1
    return f"{prefix}{counter[0]}"


# --- users, sessions, keys (through the gateway) ------------------------------------------
def sign_up(name):
    return must(gcall("POST", "/v1/users", {"name": name, "email": f"{name}@example.org",
                                            "password": PASSWORD}), 201, "sign-up " + name)


def login(name):
    return must(gcall("POST", "/v1/sessions", {"login": name, "password": PASSWORD}), 201,
                "login " + name)["token"]


try:
    alice, bob, carol = sign_up("alice"), sign_up("bob"), sign_up("carol")
    A, B, C = alice["id"], bob["id"], carol["id"]
    tok_a, tok_b = login("alice"), login("bob")
    t.ok(tok_a.startswith("st1.") and claims_of(tok_a)["sub"] == int(A),
         "sign-up and login through the gateway", tok_a[:40])
    key_rw = must(gcall("POST", "/v1/keys", {"name": "sync",
                                             "scopes": ["files:read", "files:write"]},
                        auth=tok_a), 201, "rw key")["token"]
    key_ro = must(gcall("POST", "/v1/keys", {"name": "viewer"}, auth=tok_a), 201,
                  "ro key")["token"]
    gone = must(gcall("POST", "/v1/keys", {"name": "old"}, auth=tok_a), 201, "old key")
    must(gcall("DELETE", f"/v1/keys/{gone['id']}", auth=tok_a), 204, "revoking a key")
    key_revoked = gone["token"]
    forged = tok_a[:-6] + ("AAAAAA" if not tok_a.endswith("AAAAAA") else "BBBBBB")
    now = int(time.time())
    sid_a = claims_of(tok_a)["sid"]
    expired = mint(A, sid_a, now - 7200, now - 3600)
    minted_live = mint(A, sid_a, now - 10, now + 3600)
except Exception:
    t.ok(False, "fixtures: users, sessions and keys", traceback.format_exc())
    t.done()

st, _, j, _ = gcall("GET", "/v1/nodes/" + alice["root"], auth=minted_live)
t.ok(st == 200 and j["id"] == alice["root"],
     "a token minted here with a future expiry is accepted (so the expired one differs only "
     "in its expiry)", (st, j))

# --- A's things (made straight on metad's socket as A) -------------------------------------
M = metad.sock
try:
    docs = must(ucall(M, "POST", "/v1/folders", {"parent": alice["root"], "name": "docs"},
                      user=A), 201, "folder docs")
    report = must(ucall(M, "POST", f"/v1/upload?parent={docs['id']}&name=zebrafinch.txt",
                        b"the zebrafinch report\n" * 50, user=A), 201, "upload")
    link = must(ucall(M, "POST", f"/v1/nodes/{docs['id']}/links", {}, user=A), 201, "link")
    plink = must(ucall(M, "POST", f"/v1/nodes/{docs['id']}/links", {"password": "sesame12"},
                       user=A), 201, "password link")
    must(ucall(M, "PUT", f"/v1/nodes/{docs['id']}/shares/carol", {"role": "read"}, user=A),
         200, "share with carol")
    must(ucall(M, "PUT", f"/v1/follows/{A}", user=C), 200, "carol follows alice")
except Exception:
    t.ok(False, "fixtures: A's folder, file, links", traceback.format_exc())
    t.done()

# --- the matrix ----------------------------------------------------------------------------
ANON, FORGED, EXPIRED, REVOKED = "anonymous", "forged token", "expired token", "revoked key"
CA, CB, KEY, RO = "A", "B", "A's key", "A's read-only key"
OPERATOR = "operator (control socket)"
COLUMNS = [ANON, FORGED, EXPIRED, REVOKED, CA, CB, KEY, RO]
CRED = {ANON: None, FORGED: forged, EXPIRED: expired, REVOKED: key_revoked, CA: tok_a,
        CB: tok_b, KEY: key_rw, RO: key_ro}
USER = {CA: A, KEY: A, RO: A, CB: B}  # whose request it is, for fixtures made per cell


def required(ok, b, write):
    """A route behind auth=required: no or bad credentials 401, A and A's key ok, B what it
    gets on A's things, the read-only key 403 on writes (insufficient_scope)."""
    return {ANON: 401, FORGED: 401, EXPIRED: 401, REVOKED: 401, CA: ok, CB: b, KEY: ok,
            RO: 403 if write else ok}


def everyone(code):
    return {c: code for c in COLUMNS}


class Row:
    def __init__(self, name, method, path, expect, body=None, prep=None, check=None,
                 operator=None, upstream=None, headers=None):
        self.name, self.method, self.path, self.expect = name, method, path, expect
        self.body, self.prep, self.check, self.headers = body, prep, check, headers
        self.operator = operator  # expected status for the operator on the socket, or None
        self.upstream = upstream or M


def val(x, ctx):
    return x(ctx) if callable(x) else x


def new_folder(col, trashed=False):
    f = must(ucall(M, "POST", "/v1/folders", {"parent": alice["root"], "name": fresh("f")},
                   user=A), 201, "fresh folder")
    if trashed:
        must(ucall(M, "DELETE", f"/v1/nodes/{f['id']}", user=A), 200, "trash it")
    return {"id": f["id"]}


def shared_folder(col):
    x = new_folder(col)
    must(ucall(M, "PUT", f"/v1/nodes/{x['id']}/shares/carol", {"role": "read"}, user=A), 200,
         "share it")
    return x


def new_block(col):
    data = os.urandom(1000)
    return {"data": data, "hash": hashlib.sha256(data).hexdigest()}


def stored_block(col):
    b = new_block(col)
    must(ucall(blockd.sock, "PUT", f"/v1/blocks/{b['hash']}", b["data"]), 201, "block")
    return b


def new_key(col):
    k = must(ucall(M, "POST", "/v1/keys", {"name": "temp"}, user=A), 201, "fresh key")
    return {"id": k["id"]}


def follows_carol(col):
    if col in USER:
        must(ucall(M, "PUT", f"/v1/follows/{C}", user=USER[col]), 200, "follow carol")
    return {}


def fresh_session(col):
    """DELETE /v1/sessions/current signs out: A and B use a session made for the cell."""
    return {"auth": login({CA: "alice", CB: "bob"}[col])} if col in (CA, CB) else {}


def ids(j):
    return [x.get("id") for x in (j or {}).get("items", [])]


def is_me(col, j, ctx):
    return j.get("id") == USER[col]


ROWS = [
    # sign-up, sessions, users
    Row("POST /v1/users (sign-up)", "POST", "/v1/users", everyone(201),
        body=lambda c: {"name": fresh("user"), "email": fresh("m") + "@example.org",
                        "password": PASSWORD}),
    Row("POST /v1/sessions (login)", "POST", "/v1/sessions", everyone(201),
        body={"login": "alice", "password": PASSWORD}),
    Row("POST /v1/sessions (wrong password)", "POST", "/v1/sessions", everyone(401),
        body={"login": "alice", "password": "not the password"}),
    Row("DELETE /v1/sessions/current", "DELETE", "/v1/sessions/current",
        {ANON: 401, FORGED: 401, EXPIRED: 401, REVOKED: 401, CA: 204, CB: 204, KEY: 400,
         RO: 400}, prep=fresh_session),
    Row("GET /v1/users/me", "GET", "/v1/users/me", required(200, 200, False),
        check=is_me),
    # API keys
    Row("POST /v1/keys", "POST", "/v1/keys", required(201, 201, True), body={"name": "k"}),
    Row("GET /v1/keys", "GET", "/v1/keys", required(200, 200, False),
        check=lambda col, j, x: (gone["id"] in ids(j)) == (col != CB)),
    Row("DELETE /v1/keys/{id}", "DELETE", lambda x: f"/v1/keys/{x['id']}",
        required(204, 404, True), prep=new_key),
    # folders and nodes
    Row("POST /v1/folders", "POST", "/v1/folders", required(201, 404, True),
        body=lambda c: {"parent": alice["root"], "name": fresh("new")}),
    Row("GET /v1/nodes/{id}", "GET", f"/v1/nodes/{docs['id']}", required(200, 404, False)),
    Row("GET /v1/stat?path=", "GET", "/v1/stat?path=/docs", required(200, 404, False),
        check=lambda col, j, x: j.get("id") == docs["id"]),
    Row("GET /v1/nodes/{id}/children", "GET", f"/v1/nodes/{docs['id']}/children?limit=10",
        required(200, 404, False), check=lambda col, j, x: ids(j) == [report["id"]]),
    Row("PATCH /v1/nodes/{id}", "PATCH", lambda x: f"/v1/nodes/{x['id']}",
        required(200, 404, True), prep=new_folder, body=lambda c: {"name": fresh("renamed")}),
    Row("DELETE /v1/nodes/{id} (to the trash)", "DELETE", lambda x: f"/v1/nodes/{x['id']}",
        required(200, 404, True), prep=new_folder),
    Row("POST /v1/nodes/{id}/restore", "POST", lambda x: f"/v1/nodes/{x['id']}/restore",
        required(200, 404, True), prep=lambda c: new_folder(c, trashed=True)),
    Row("GET /v1/trash", "GET", lambda x: "/v1/trash", required(200, 200, False),
        prep=lambda c: new_folder(c, trashed=True),
        check=lambda col, j, x: (x["id"] in ids(j)) == (col != CB)),
    Row("DELETE /v1/trash/{id} (purge)", "DELETE", lambda x: f"/v1/trash/{x['id']}",
        required(200, 404, True), prep=lambda c: new_folder(c, trashed=True)),
    Row("DELETE /v1/trash (empty)", "DELETE", lambda x: "/v1/trash", required(200, 200, True),
        prep=lambda c: new_folder(c, trashed=True),
        check=lambda col, j, x: (j.get("removed") == 0) == (col == CB)),
    Row("PUT /v1/nodes/{id}/processing (transcoded's)", "PUT",
        f"/v1/nodes/{report['id']}/processing",
        {ANON: 401, FORGED: 401, EXPIRED: 401, REVOKED: 401, CA: 403, CB: 403, KEY: 403,
         RO: 403}, body={"state": "ready"}, operator=200),
    # uploads
    Row("POST /v1/upload (one-shot)", "POST",
        lambda x: f"/v1/upload?parent={alice['root']}&name={fresh('up')}.txt",
        required(201, 404, True), body=b"one-shot upload body\n"),
    Row("POST /v1/blocks/missing (blockd)", "POST", "/v1/blocks/missing",
        required(200, 200, False), body=lambda c: {"blocks": [new_block(c)["hash"]]}),
    Row("PUT /v1/blocks/{sha256} (blockd)", "PUT", lambda x: f"/v1/blocks/{x['hash']}",
        required(201, 201, True), prep=new_block, body=lambda x: x["data"]),
    Row("POST /v1/files (commit)", "POST", "/v1/files", required(201, 404, True),
        prep=stored_block,
        body=lambda x: {"parent": alice["root"], "name": fresh("c"), "blocks": [x["hash"]]}),
    # sharing and links
    Row("PUT /v1/nodes/{id}/shares/{who}", "PUT", lambda x: f"/v1/nodes/{x['id']}/shares/carol",
        required(200, 404, True), prep=new_folder, body={"role": "read"}),
    Row("GET /v1/nodes/{id}/shares", "GET", f"/v1/nodes/{docs['id']}/shares",
        required(200, 404, False)),
    Row("DELETE /v1/nodes/{id}/shares/{who}", "DELETE",
        lambda x: f"/v1/nodes/{x['id']}/shares/carol", required(204, 404, True),
        prep=shared_folder),
    Row("GET /v1/shared", "GET", "/v1/shared", required(200, 200, False),
        check=lambda col, j, x: j.get("items") == []),
    Row("POST /v1/nodes/{id}/links", "POST", f"/v1/nodes/{docs['id']}/links",
        required(201, 404, True), body={}),
    Row("GET /v1/nodes/{id}/links", "GET", f"/v1/nodes/{docs['id']}/links",
        required(200, 404, False)),
    Row("DELETE /v1/nodes/{id}/links/{link}", "DELETE",
        lambda x: f"/v1/nodes/{docs['id']}/links/{x['id']}", required(204, 404, True),
        prep=lambda c: {"id": must(ucall(M, "POST", f"/v1/nodes/{docs['id']}/links", {},
                                         user=A), 201, "link")["id"]}),
    Row("GET /v1/links/{token}", "GET", f"/v1/links/{link['token']}", everyone(200),
        check=lambda col, j, x: j.get("id") == docs["id"]),
    Row("GET /v1/links/{token}/nodes/{id}", "GET",
        f"/v1/links/{link['token']}/nodes/{report['id']}", everyone(200)),
    Row("GET /v1/links/{token}/nodes/{id}/children", "GET",
        f"/v1/links/{link['token']}/nodes/{docs['id']}/children", everyone(200),
        check=lambda col, j, x: ids(j) == [report["id"]]),
    Row("GET /v1/links/{token} (node outside the link)", "GET",
        f"/v1/links/{link['token']}/nodes/{alice['root']}", everyone(404)),
    Row("GET /v1/links/{token} (password, none sent)", "GET", f"/v1/links/{plink['token']}",
        everyone(401)),
    Row("GET /v1/links/{token} (password sent)", "GET", f"/v1/links/{plink['token']}",
        everyone(200), headers={"X-Link-Password": "sesame12"}),
    Row("GET /v1/links/{token} (unknown token)", "GET", "/v1/links/pl_nosuchtoken",
        everyone(404)),
    # downloads: metad redirects to a URL blockd signed; /c/ is served by blockd
    Row("GET /v1/nodes/{id}/content", "GET", f"/v1/nodes/{report['id']}/content",
        required(302, 404, False)),
    Row("GET /v1/nodes/{id}/content?redirect=false", "GET",
        f"/v1/nodes/{report['id']}/content?redirect=false", required(200, 404, False),
        check=lambda col, j, x: j.get("url", "").startswith(f"/c/{report['manifest']}?exp=")),
    Row("GET /v1/nodes/{id}/content (a folder)", "GET", f"/v1/nodes/{docs['id']}/content",
        required(400, 404, False)),
    Row("GET /v1/links/{token}/nodes/{id}/content", "GET",
        f"/v1/links/{link['token']}/nodes/{report['id']}/content", everyone(302)),
    Row("GET /v1/links/{token}/content (password, none sent)", "GET",
        f"/v1/links/{plink['token']}/nodes/{report['id']}/content", everyone(401)),
    Row("GET /c/{manifest}?exp=&sig= (signed)", "GET", lambda x: x["url"], everyone(200),
        prep=lambda c: must(ucall(blockd.sock, "POST", "/v1/sign", {"id": report["manifest"]}),
                            200, "sign")),
    Row("GET /c/{manifest} (unsigned)", "GET", f"/c/{report['manifest']}", everyone(400)),
    Row("GET /c/{manifest} (forged signature)", "GET",
        f"/c/{report['manifest']}?exp={int(time.time()) + 600}&sig={'ab' * 32}", everyone(403)),
    # search, follows, feed
    Row("GET /v1/search", "GET", "/v1/search?q=zebrafinch", required(200, 200, False),
        check=lambda col, j, x: ids(j) == ([] if col == CB else [report["id"]])),
    Row("PUT /v1/follows/{user}", "PUT", f"/v1/follows/{C}", required(200, 200, True)),
    Row("DELETE /v1/follows/{user}", "DELETE", f"/v1/follows/{C}", required(204, 204, True),
        prep=follows_carol),
    Row("GET /v1/follows", "GET", "/v1/follows", required(200, 200, False)),
    Row("GET /v1/followers", "GET", "/v1/followers", required(200, 200, False),
        check=lambda col, j, x: [f["user"] for f in j["items"]] == ([] if col == CB else [C])),
    Row("GET /v1/feed", "GET", "/v1/feed", required(200, 200, False)),
    # operators' routes: not published (404 from the gateway), 2xx on the control socket
    Row("GET /v1/admin/users", "GET", "/v1/admin/users", everyone(404), operator=200),
    Row("POST /v1/admin/users", "POST", "/v1/admin/users", everyone(404), operator=201,
        body=lambda c: {"name": fresh("op"), "email": fresh("o") + "@example.org",
                        "password": PASSWORD}),
    Row("PATCH /v1/admin/users/{user}", "PATCH", "/v1/admin/users/carol", everyone(404),
        operator=200, body={"disabled": False}),
    Row("GET /v1/meta/stats", "GET", "/v1/meta/stats", everyone(404), operator=200),
    Row("GET /v1/meta/backup", "GET", "/v1/meta/backup", everyone(404), operator=200),
    Row("POST /v1/ids", "POST", "/v1/ids", everyone(404), operator=200, body={"count": 1}),
    Row("GET /v1/status (metad)", "GET", "/v1/status", everyone(404), operator=200),
    Row("POST /v1/reload (metad)", "POST", "/v1/reload", everyone(404), operator=200),
    Row("GET /metrics (metad)", "GET", "/metrics", everyone(404), operator=200),
    Row("POST /v1/blobs (blockd)", "POST", "/v1/blobs", everyone(404), operator=201,
        body=b"a blob", upstream=blockd.sock),
    Row("POST /v1/verify (blockd)", "POST", "/v1/verify", everyone(404), operator=200,
        body={"id": report["manifest"]}, upstream=blockd.sock),
    Row("POST /v1/sign (blockd)", "POST", "/v1/sign", everyone(404), operator=200,
        body={"id": report["manifest"]}, upstream=blockd.sock),
    Row("GET /v1/content/{id} (blockd)", "GET", f"/v1/content/{report['manifest']}",
        everyone(404), operator=200, upstream=blockd.sock),
    Row("GET /v1/gc (blockd)", "GET", "/v1/gc", everyone(404), operator=200,
        upstream=blockd.sock),
    Row("GET /v1/blocks/stats (blockd)", "GET", "/v1/blocks/stats", everyone(405), operator=200,
        upstream=blockd.sock),
]


def fmt(e):
    return "/".join(str(x) for x in sorted(e)) if isinstance(e, (set, frozenset)) else str(e)


def run_cell(row, col):
    ctx = row.prep(col) if row.prep else {}
    path, body = val(row.path, ctx), val(row.body, ctx)
    if col == OPERATOR:
        st, h, j, raw = ucall(row.upstream, row.method, path, body, headers=row.headers)
        want = row.operator
    else:
        st, h, j, raw = gcall(row.method, path, body, auth=ctx.get("auth", CRED[col]),
                              headers=row.headers)
        want = row.expect[col]
    wants = want if isinstance(want, (set, frozenset)) else {want}
    good = st in wants
    if good and st >= 400:
        good = error_shape(j)  # every refusal in the error shape
    if good and st < 300 and row.check and col != OPERATOR and j is not None:
        good = bool(row.check(col, j, ctx))
    code = j["error"]["code"] if error_shape(j) else ""
    return good, want, (st, code, raw[:300])


counts = {"cells": 0}
for row in ROWS:
    cols = COLUMNS + ([OPERATOR] if row.operator is not None else [])
    for col in cols:
        counts["cells"] += 1
        try:
            good, want, detail = run_cell(row, col)
            t.ok(good, f"{row.name} as {col}: {fmt(want)}",
                 f"got {detail[0]} {detail[1]}: {detail[2]!r}")
        except Exception:
            t.ok(False, f"{row.name} as {col}", traceback.format_exc())

# --- conventions ---------------------------------------------------------------------------
st, h, j, _ = gcall("GET", f"/v1/nodes/{docs['id']}", auth=tok_a,
                    headers={"X-Request-Id": "matrix-1"})
t.ok(st == 200 and h.get("x-request-id") == "matrix-1" and h.get("etag") == f'"{j["version"]}"'
     and h.get("x-strata-access") == "owner", "request id kept, ETag and X-Strata-Access", h)
st, h, j, _ = gcall("GET", "/v1/users/me")
t.ok(st == 401 and len(h.get("x-request-id", "")) == 32 and error_shape(j),
     "an upstream's refusal has a request id and the error shape", (st, h, j))
st, h, j, _ = gcall("GET", f"/v1/nodes/{docs['id']}")
t.ok(st == 401 and j["error"]["code"] == "unauthenticated",
     "the gateway's own refusal (auth=required, no credentials): 401 unauthenticated", (st, j))
st, h, j, _ = gcall("GET", "/v1/blocks/stats", auth=tok_a)
t.ok(st == 405 and h.get("allow") == "PUT, POST", "a method the route does not take: 405 + "
     "Allow", (st, h))
whole = os.urandom(4 << 20)
wh = hashlib.sha256(whole).hexdigest()
st, _, j, _ = gcall("POST", "/v1/files", {"parent": alice["root"], "name": "big.bin",
                                          "blocks": [wh]}, auth=tok_a)
t.ok(st == 409 and j["error"]["code"] == "missing_blocks" and j["missing"] == [wh],
     "commit: 409 missing_blocks lists what blockd lacks", (st, j))
st, _, j, _ = gcall("PUT", f"/v1/blocks/{wh}", whole, auth=tok_a)
t.ok(st == 201 and j["size"] == len(whole), "a whole 4 MiB block passes the gateway", (st, j))
st, _, j, _ = gcall("POST", "/v1/files", {"parent": alice["root"], "name": "big.bin",
                                          "blocks": [wh]}, auth=tok_a)
t.ok(st == 201 and j["size"] == len(whole) and j["manifest"], "then the commit: 201", (st, j))
out = raw_tcp((f"PUT /v1/blocks/{wh} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok_a}\r\n"
               f"Content-Length: {len(whole) + 1}\r\nConnection: close\r\n\r\n").encode() +
              whole + b"x")
t.ok(out.startswith(b"HTTP/1.1 413"), "a body over [http] max_body_bytes: 413", out[:200])

# --- a download, end to end: the redirect, then the content through the gateway ----------
st, h, j, _ = gcall("GET", f"/v1/nodes/{report['id']}/content", auth=tok_a)
loc = h.get("location", "")
t.ok(st == 302 and loc == j.get("url") and h.get("cache-control") == "private, no-store" and
     j.get("expires", 0) > time.time() + 500, "download: 302 to a signed URL that lasts "
     "files.content_url_ttl_seconds, not cached", (st, h, j))
st, h, _, raw = gcall("GET", loc)
t.ok(st == 200 and raw == b"the zebrafinch report\n" * 50 and h.get("etag"),
     "the signed URL serves the file's bytes through the gateway, without credentials",
     (st, h, raw[:80]))
st, h, _, raw = gcall("GET", loc, headers={"Range": "bytes=4-13"})
t.ok(st == 206 and raw == b"zebrafinch", "and Range requests on it", (st, raw[:40]))
st, h, _, _ = gcall("GET", loc, headers={"If-None-Match": h.get("etag", "x")})
t.ok(st == 304, "and conditional requests", st)
st, h, j, _ = gcall("GET", f"/v1/links/{plink['token']}/nodes/{report['id']}/content",
                    headers={"X-Link-Password": "sesame12"})
st2, _, _, raw = gcall("GET", h.get("location", "/none"))
t.ok(st == 302 and st2 == 200 and raw.startswith(b"the zebrafinch"),
     "a password link's holder downloads with the password", (st, st2, j))
st, _, j, _ = gcall("GET", f"/v1/nodes/{report['id']}/content?rendition=poster", auth=tok_a)
t.ok(st == 404 and j["error"]["code"] == "no_such_rendition",
     "a rendition the file does not have: 404 no_such_rendition", (st, j))

# --- X-Strata-Caller sent by a client is never honoured -------------------------------------
st, _, j, _ = ucall(M, "GET", f"/v1/nodes/{docs['id']}", user=A)
t.ok(st == 200, "(metad itself honours X-Strata-Caller on its socket: what a forged one would "
     "get if it passed)", (st, j))
for name, kw, want in [
        ("alone, on an auth=none route", dict(path="/v1/users/me"), 401),
        ("alone, on an auth=required route", dict(path=f"/v1/nodes/{docs['id']}"), 401),
        ("lower case", dict(path="/v1/users/me", name="x-strata-caller"), 401),
        ("with a non-token Bearer", dict(path=f"/v1/nodes/{docs['id']}", auth="junk"), 401),
        ("with B's token", dict(path=f"/v1/nodes/{docs['id']}", auth=tok_b), 404),
        ("with B's token, on /v1/users/me", dict(path="/v1/users/me", auth=tok_b), 200),
        ("with a revoked key", dict(path=f"/v1/nodes/{docs['id']}", auth=key_revoked), 401)]:
    hn = kw.get("name", "X-Strata-Caller")
    st, _, j, raw = gcall("GET", kw["path"], auth=kw.get("auth"), headers={hn: f"user={A}"})
    good = st == want and (st != 200 or j.get("id") == B)
    t.ok(good, f"forged X-Strata-Caller: user=A {name}: {want}", (st, raw[:200]))
# Twice, and as a chunked body's trailer.
out = raw_tcp((f"GET /v1/users/me HTTP/1.1\r\nHost: x\r\nX-Strata-Caller: user={A}\r\n"
               f"X-Strata-Caller: user={A}\r\nConnection: close\r\n\r\n").encode())
t.ok(out.startswith(b"HTTP/1.1 401"), "forged X-Strata-Caller sent twice: 401", out[:200])
folder_json = json.dumps({"parent": alice["root"], "name": "t"}).encode()
out = raw_tcp((f"POST /v1/folders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key_ro}\r\n"
               "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
               "Connection: close\r\n\r\n").encode() +
              b"%x\r\n" % len(folder_json) + folder_json +
              f"\r\n0\r\nX-Strata-Caller: user={A}\r\n\r\n".encode())
t.ok(out.startswith(b"HTTP/1.1 403"), "forged X-Strata-Caller as a trailer: the read-only "
     "key's own 403, not A's write", out[:200])

# --- signing out, disabled users -----------------------------------------------------------
s2 = login("alice")
st, _, _, _ = gcall("DELETE", "/v1/sessions/current", auth=s2)
t.ok(st == 204, "sign-out through the gateway: 204", st)
st, _, _, _ = gcall("GET", "/v1/users/me", auth=s2)
t.ok(st == 401, "the signed-out token on an auth=none route (metad checks it): 401", st)
st, _, _, raw = gcall("GET", f"/v1/nodes/{docs['id']}", auth=s2)
t.ok(st == 401, "the signed-out token on an auth=required route (the gateway checks it): 401",
     (st, raw[:200]))
must(ucall(M, "PATCH", "/v1/admin/users/bob", {"disabled": True}), 200, "disable bob")
st1 = gcall("GET", f"/v1/nodes/{bob['root']}", auth=tok_b)[0]
st2 = gcall("GET", "/v1/users/me", auth=tok_b)[0]
t.ok(st1 == 401 and st2 == 401, "a disabled user's valid token: 401 on both kinds of route",
     (st1, st2))
must(ucall(M, "PATCH", "/v1/admin/users/bob", {"disabled": False}), 200, "enable bob")

# With session_public_keys_file = "" the gateway verifies nothing and metad checks every
# token: the signed-out one is refused on every route.
nconf, nrun, nport = gateway_conf("gw-nokeys", ROUTES, keys=False)
gw2 = Daemon("gatewayd", nconf, nrun)
t.ok(gw2.wait_ready(), "a second gateway, without session keys, starts", gw2.output())
st1 = gcall("GET", f"/v1/nodes/{docs['id']}", auth=s2, gport=nport)[0]
st2 = gcall("GET", f"/v1/nodes/{docs['id']}", auth=tok_a, gport=nport)[0]
st3 = gcall("GET", f"/v1/nodes/{docs['id']}", gport=nport)[0]
t.ok((st1, st2, st3) == (401, 200, 401), "without session keys: signed-out token 401, live "
     "token 200, none 401", (st1, st2, st3))
gw2.stop()

# --- the example of gatewayd.conf(5): "/v1 pool=metad" publishes the operators' routes ------
xconf, xrun, xport = gateway_conf("gw-example", ["/v1/blocks pool=blockd timeout_ms=600000",
                                                 "/v1 pool=metad"])
gw3 = Daemon("gatewayd", xconf, xrun)
t.ok(gw3.wait_ready(), "a gateway with the gatewayd.conf(5) example routes starts",
     gw3.output())
for method, path, body in [("GET", "/v1/admin/users", None),
                           ("PATCH", "/v1/admin/users/carol", {"disabled": False}),
                           ("GET", "/v1/meta/backup", None),
                           ("POST", "/v1/reload", None),
                           ("PUT", f"/v1/nodes/{report['id']}/processing", {"state": "ready"})]:
    st, _, _, raw = gcall(method, path, body, gport=xport)
    t.ok(st in (401, 403, 404), f"example table, anonymous {method} {path}: refused",
         f"got {st}: {raw[:120]!r}")
s3 = login("alice")
st, _, _, raw = gcall("DELETE", "/v1/sessions/current", auth=s3, gport=xport)
t.ok(st == 204, "example table (auth=optional on /v1/sessions): sign-out: 204",
     f"got {st}: {raw[:160]!r}")
gw3.stop()

rc, _ = gw.stop()
t.ok(rc == 0, "gatewayd stops cleanly", gw.output()[-2000:])
t.ok(metad.stop()[0] == 0, "metad stops cleanly")
t.ok(blockd.stop()[0] == 0, "blockd stops cleanly")
print(f"# matrix: {counts['cells']} cells over {len(ROWS)} routes", flush=True)
t.done()
