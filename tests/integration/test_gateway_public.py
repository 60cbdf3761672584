#!/usr/bin/env python3
"""gatewayd's public listener: the web client's files, nothing outside the web root."""

import http.client
import os

from harness import Daemon, Tap, free_port, tempdir, write_config

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")
web = os.path.join(d, "web")
os.makedirs(os.path.join(web, "sub"))
with open(os.path.join(web, "index.html"), "w") as f:
    f.write("<h1>root</h1>")
with open(os.path.join(web, "app.js"), "w") as f:
    f.write("console.log(1)")
with open(os.path.join(web, ".secret"), "w") as f:
    f.write("HIDDEN-MARKER")
with open(os.path.join(d, "outside.txt"), "w") as f:
    f.write("OUTSIDE-MARKER")
os.symlink(os.path.join(d, "outside.txt"), os.path.join(web, "escape.txt"))
port = free_port()
conf = write_config(os.path.join(d, "gatewayd.conf"), "gatewayd", rundir, d,
                    f'[public]\nlisten = ["127.0.0.1:{port}"]\nweb_root = "{web}"\n')
gw = Daemon("gatewayd", conf, rundir)
t.ok(gw.wait_ready(), "gatewayd starts", gw.output())


def get(path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path)
    r = c.getresponse()
    out = (r.status, r.getheader("Content-Type"), r.read())
    c.close()
    return out


st, ct, body = get("/")
t.ok(st == 200 and ct.startswith("text/html") and body == b"<h1>root</h1>", "/ is index.html",
     (st, ct, body))
st, ct, body = get("/app.js")
t.ok(st == 200 and ct.startswith("text/javascript"), "static file with its type", (st, ct))
st, _, _ = get("/healthz")
t.ok(st == 200, "/healthz on the public side")
# A dot segment is refused by the HTTP server itself (400), before any route or file.
for path, code in [("/../outside.txt", 400), ("/%2e%2e/outside.txt", 400), ("/.secret", 404),
                   ("/escape.txt", 404), ("/nope.html", 404), ("/sub", 404)]:
    st, _, body = get(path)
    t.ok(st == code and b"OUTSIDE-MARKER" not in body and b"HIDDEN-MARKER" not in body,
         f"{path} is not served ({code})", (st, body))
rc, _ = gw.stop()
t.ok(rc == 0, "stops cleanly")
t.done()
