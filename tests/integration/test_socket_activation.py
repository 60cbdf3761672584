#!/usr/bin/env python3
"""Socket activation as systemd does it (LISTEN_FDS, FileDescriptorName=), through
systemd-socket-activate: the daemon serves the sockets it is given and binds nothing itself."""

import os
import shutil
import socket
import sys

from harness import Daemon, Tap, free_port, request, tempdir, write_config

t = Tap()
activate = shutil.which("systemd-socket-activate")
if not activate:
    print("1..0 # SKIP systemd-socket-activate not installed (package systemd)")
    sys.exit(0)

d = tempdir()
rundir = os.path.join(d, "run")           # where the daemon would bind: must stay empty
sock = os.path.join(d, "activated.sock")  # what "systemd" listens on
conf = write_config(os.path.join(d, "metad.conf"), "metad", rundir, d)
daemon = Daemon("metad", conf, rundir,
                wrapper=[activate, "-l", sock, "--fdname=control"])
daemon.sock = sock
t.ok(daemon.wait_ready(), "metad serves the activated control socket", daemon.output())
t.ok(not os.path.exists(os.path.join(rundir, "metad.sock")), "binds no socket of its own")
t.ok("from systemd" in daemon.output(), "logs that the socket came from systemd",
     daemon.output())
rc, took = daemon.stop()
t.ok(rc == 0, "stops cleanly", daemon.output())
t.ok(os.path.exists(sock), "leaves systemd's socket file alone")

# gatewayd: two named sockets, control + public.
port = free_port()
conf = write_config(os.path.join(d, "gatewayd.conf"), "gatewayd", rundir, d,
                    f'[public]\nlisten = ["127.0.0.1:{free_port()}"]\n'
                    f'web_root = "{os.environ["STRATA_WEB_ROOT"]}"\n')
gsock = os.path.join(d, "gw.sock")
gw = Daemon("gatewayd", conf, rundir,
            wrapper=[activate, "-l", gsock, "-l", f"127.0.0.1:{port}",
                     "--fdname=control:public"])
gw.sock = gsock
t.ok(gw.wait_ready(), "gatewayd takes control and public sockets", gw.output())
with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    reply = s.recv(4096)
t.ok(reply.startswith(b"HTTP/1.1 200"), "the activated public socket serves", reply)
rc, _ = gw.stop()
t.ok(rc == 0, "gatewayd stops cleanly", gw.output())
t.done()
