#!/usr/bin/env python3
"""Checks of the installed systemd units, sysusers.d/tmpfiles.d and default configs.

Every check except check-config works on the tree "meson install --destdir" produces,
so it tests what gets installed, at the paths it gets installed to:

  verify        systemd-analyze verify --root=TREE on every unit: syntax, unknown keys,
                ExecStart=/ExecStartPre=/ExecReload= binaries present and executable,
                man pages of Documentation= present, and a start job for the unit
                (with its sockets and dependencies) that systemd can build
  security      systemd-analyze security --offline=true: the "Overall exposure level"
                of every service must not exceed its limit
  contract      the units, configs, sysusers.d and tmpfiles.d agree with each other and
                with the spec (socket paths, fd names, directories, user, ...)
  sysusers-tmpfiles
                systemd-sysusers and systemd-tmpfiles --create run on the tree, twice
  check-config  each daemon accepts its etc/NAME.conf as shipped and with every key
                uncommented, and the file lists exactly the spec's keys

systemd-analyze needs no running systemd: the host's own unit files (sysinit.target,
sockets.target, ...) are copied into the tree so dependencies resolve; host files named
strata* are left out so an installed Strata cannot hide the one under test.
Exit status: 0 pass, 1 fail, 77 skip (a tool is missing), as meson expects.
"""

import argparse
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile

DAEMONS = ["dnsd", "lbd", "gatewayd", "metad", "blockd", "transcoded", "notifyd"]
STATE_DIRS = {"metad": "strata/meta", "blockd": "strata/blocks",
              "transcoded": "strata/transcode", "notifyd": "strata/notify"}
LBD_CAPS = {"CAP_NET_ADMIN", "CAP_BPF", "CAP_PERFMON"}
HOST_UNIT_DIRS = ["/usr/lib/systemd/system", "/lib/systemd/system"]
UNIT_NAME = re.compile(r"strata(-[a-z-]+)?\.(service|socket|target)")
EXPOSURE = re.compile(r"Overall exposure level for (\S+): (\d+(?:\.\d+)?)")

# The spec's config keys (strata-spec: "Config"), per section.
COMMON_KEYS = {
    "daemon": ["runtime_dir", "user", "group"],
    "log": ["level"],
    "http": ["max_header_bytes", "max_body_bytes", "connection_limit", "idle_timeout"],
}


def spec_keys(name):
    keys = {s: list(k) for s, k in COMMON_KEYS.items()}
    if name in STATE_DIRS:
        keys["daemon"].append("state_dir")
    if name == "gatewayd":
        keys["log"] = keys["log"] + ["access", "access_buffer_bytes"]
        keys["public"] = ["listen", "web_root", "allow", "deny"]
        keys["tls"] = ["listen", "certificate_file", "key_file", "min_version", "priorities"]
        keys["proxy"] = ["pools", "routes", "connections_per_member", "header_rules", "cors",
                         "compress", "websocket_max_connections",
                         "websocket_idle_timeout_seconds"]
        keys["auth"] = ["session_public_keys_file", "jwks_file", "jwt_issuers",
                        "jwt_audiences", "jwt_algorithms", "jwt_leeway_seconds",
                        "api_key_verifier", "api_key_cache_seconds",
                        "denied_credentials_file"]
        keys["cache"] = ["max_bytes", "max_object_bytes"]
    if name == "metad":
        keys["meta"] = ["node_id", "max_map_bytes", "commit_nice"]
        keys["auth"] = ["session_key_file", "session_ttl_seconds", "password_cost"]
        keys["blockd"] = ["socket", "verify_timeout_seconds"]
        keys["files"] = ["max_upload_bytes", "process_types", "content_url_ttl_seconds",
                          "content_url_base"]
        keys["events"] = ["sinks"]
        keys["feeds"] = ["max_entries"]
    if name == "transcoded":
        keys["metad"] = ["socket"]
        keys["blockd"] = ["socket"]
        keys["workers"] = ["count", "nice", "memory_mb", "job_timeout_seconds",
                           "stall_timeout_seconds"]
        keys["jobs"] = ["max_attempts", "retry_backoff_seconds", "max_source_bytes"]
        keys["video"] = ["ladder", "audio_kbps", "keyframe_seconds", "segment_seconds",
                         "thumbnail_seconds", "thumbnail_width", "preset", "max_pixels",
                         "max_duration_seconds"]
        keys["image"] = ["max_width", "max_height", "quality", "thumbnail_size", "max_pixels"]
    if name == "blockd":
        keys["store"] = ["io_threads"]
        keys["upload"] = ["max_blob_bytes"]
        keys["content"] = ["cached_manifests", "open_blocks", "cache_control"]
        keys["signing"] = ["key_file"]
        keys["public"] = ["listen"]
        keys["verify"] = ["max_bytes", "allowed_types", "clamav_db_dir"]
        keys["gc"] = ["grace_seconds"]
    return {f"{s}.{k}" for s, ks in keys.items() for k in ks}


class Failures:
    def __init__(self):
        self.items = []

    def check(self, ok, what):
        if not ok:
            self.items.append(what)
            print(f"FAIL: {what}")
        return ok

    def finish(self, passed_msg):
        if self.items:
            print(f"\n{len(self.items)} problem(s)")
            return 1
        print(passed_msg)
        return 0


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


def need_tool(name):
    path = shutil.which(name)
    if not path:
        skip(f"{name} not found")
    return path


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


# ------------------------------------------------------------------ installed tree

class Tree:
    """A "meson install --destdir" of the build, removed on exit (unless KEEP_TREE=1)."""

    def __init__(self, args):
        self.args = args
        self.keep = args.tree is not None
        if self.keep:  # an existing tree, e.g. the contents of the .debs (dpkg -x)
            self.root = os.path.abspath(args.tree)
            return
        self.root = tempfile.mkdtemp(prefix="units-tree.")
        env = dict(os.environ)
        env.pop("DESTDIR", None)
        # "meson install" first brings the build up to date (meson test only builds what
        # tests depend on, and man pages, web files... are installed too); the lock keeps
        # these tests from running ninja in the build directory at the same time.
        with open(args.lock, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            r = run([args.meson, "install", "-C", args.build_root, "--quiet",
                     "--destdir", self.root], env=env)
        if r.returncode != 0:
            print(r.stdout)
            self.close()
            print("FAIL: meson install --destdir failed")
            sys.exit(1)

    def path(self, installed):
        return os.path.join(self.root, installed.lstrip("/"))

    def unit_path(self, unit):
        return self.path(os.path.join(self.args.unit_dir, unit))

    def add_host_units(self):
        """Copy the host's unit files (not strata*) so that systemd's own units resolve."""
        seen = set()
        for d in HOST_UNIT_DIRS:
            real = os.path.realpath(d)
            if not os.path.isdir(real) or real in seen:
                continue
            seen.add(real)
            dest = self.path(d)
            os.makedirs(dest, exist_ok=True)
            for entry in os.listdir(real):
                if entry.startswith("strata"):
                    continue
                src = os.path.join(real, entry)
                dst = os.path.join(dest, entry)
                if os.path.lexists(dst):
                    continue
                if os.path.isdir(src) and not os.path.islink(src):
                    shutil.copytree(src, dst, symlinks=True,
                                    ignore=lambda _d, names: [n for n in names
                                                              if n.startswith("strata")])
                else:
                    shutil.copy2(src, dst, follow_symlinks=False)
        return bool(seen)

    def close(self):
        if self.keep:
            pass
        elif os.environ.get("KEEP_TREE") == "1":
            print(f"kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def parse_unit(path):
    """{section: [(key, value), ...]}; repeated keys kept in order, like systemd reads them."""
    sections, current, pending = {}, None, ""
    with open(path) as f:
        for raw in f:
            line = pending + raw.rstrip("\n")
            pending = ""
            stripped = line.strip()
            if not stripped or stripped[0] in "#;":
                continue
            if stripped.endswith("\\"):
                pending = stripped[:-1] + " "
                continue
            if stripped.startswith("[") and stripped.endswith("]"):
                current = sections.setdefault(stripped[1:-1], [])
                continue
            key, _, value = stripped.partition("=")
            current.append((key.strip(), value.strip()))
    return sections


def values(unit, section, key):
    """All values of KEY, split on whitespace, with an empty assignment resetting the list."""
    out = []
    for k, v in unit.get(section, []):
        if k == key:
            out = [] if v == "" else out + v.split()
    return out


def value(unit, section, key):
    found = [v for k, v in unit.get(section, []) if k == key]
    return found[-1] if found else None


def parse_conf_defaults(path):
    """{section.key: value} of the "# key = value" lines of an etc/NAME.conf."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            m = re.match(r"^\[([a-z_]+)\]\s*$", line)
            if m:
                section = m.group(1)
                continue
            m = re.match(r"^#\s*([a-z_]+)\s*=\s*(.+?)\s*$", line)
            if m and section:
                out[f"{section}.{m.group(1)}"] = m.group(2)
    return out


def unit_names():
    names = ["strata.target", "strata-gatewayd-public.socket"]
    for n in DAEMONS:
        names += [f"strata-{n}.service", f"strata-{n}.socket"]
    return names


# ------------------------------------------------------------------ verify

def cmd_verify(args):
    analyze = need_tool("systemd-analyze")
    tree = Tree(args)
    try:
        if not tree.add_host_units() or not os.path.exists(tree.path(
                "/usr/lib/systemd/system/sysinit.target")) and not os.path.exists(
                tree.path("/lib/systemd/system/sysinit.target")):
            skip("no systemd unit files on this host (sysinit.target) to verify against")
        man_opt, env = "--man=no", dict(os.environ)
        if shutil.which("man"):
            # systemd-analyze runs man(1) for each Documentation=man:...; point it at the
            # tree's pages only, so a page missing from the install fails the check.
            # MANOPT=-w: man(1) only looks the page up instead of formatting it (0.6 s each).
            man_opt, env["MANPATH"] = "--man=yes", tree.path(args.mandir)
            env["MANOPT"] = "-w"
        else:
            print("note: man(1) not found: Documentation= man pages not checked")
        env["SYSTEMD_COLORS"] = "0"
        f = Failures()
        units = [u for u in unit_names()
                 if f.check(os.path.exists(tree.unit_path(u)), f"{u}: not installed")]
        # One run for all units: it loads the whole unit set once (~2 s), then checks
        # each unit and builds a start job for it, naming the unit in every message.
        r = run([analyze, "verify", f"--root={tree.root}", "--generators=no", man_opt] + units,
                env=env, cwd=tree.root)
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        # verify exits 0 on some problems (unknown keys and bad values are "ignored"), so
        # any message about one of our units fails the check too.
        for unit in units:
            msgs = [l for l in lines if unit in l]
            f.check(not msgs, f"{unit}: systemd-analyze verify complained")
            print(f"{'FAIL' if msgs else 'ok  '} verify {unit}")
            for line in msgs:
                print(f"    {line}")
        f.check(r.returncode == 0, f"systemd-analyze verify exited {r.returncode}")
        for line in lines:
            if any(unit in line for unit in units):
                continue
            if f.check(not UNIT_NAME.search(line), f"systemd-analyze verify: {line}"):
                print(f"note (host units): {line}")
        return f.finish(f"systemd-analyze verify: {len(unit_names())} units ok ({man_opt})")
    finally:
        tree.close()


# ------------------------------------------------------------------ security

def cmd_security(args):
    analyze = need_tool("systemd-analyze")
    limits = {}
    for item in args.max_exposure:
        unit, _, limit = item.partition("=")
        limits[unit] = float(limit)
    tree = Tree(args)
    try:
        f = Failures()
        rows = []
        for n in DAEMONS:
            unit = f"strata-{n}.service"
            limit = limits.get(unit, args.default_max_exposure)
            r = run([analyze, "security", "--offline=true", f"--root={tree.root}",
                     "--no-pager", unit], env=dict(os.environ, SYSTEMD_COLORS="0"))
            m = EXPOSURE.search(r.stdout)
            if not f.check(m is not None, f"{unit}: no exposure level in the output"):
                print(r.stdout)
                continue
            level = float(m.group(2))
            ok = f.check(level <= limit, f"{unit}: exposure {level} > {limit}")
            rows.append((unit, level, limit, ok))
            if not ok:
                print("\n".join(l for l in r.stdout.splitlines() if "✗" in l))
        print(f"{'unit':32} {'exposure':>8} {'limit':>6}")
        for unit, level, limit, ok in rows:
            print(f"{unit:32} {level:8.1f} {limit:6.1f}  {'ok' if ok else 'FAIL'}")
        return f.finish("systemd-analyze security: every service within its limit")
    finally:
        tree.close()


# ------------------------------------------------------------------ contract

def cmd_contract(args):
    tree = Tree(args)
    try:
        return contract(args, tree)
    finally:
        tree.close()


def contract(args, tree):
    f = Failures()
    units = {}
    for u in unit_names():
        p = tree.unit_path(u)
        if f.check(os.path.exists(p), f"{u}: not installed in {args.unit_dir}"):
            units[u] = parse_unit(p)
    tmpfiles = tmpfiles_lines(tree.path(os.path.join(args.tmpfiles_dir, "strata.conf")))
    managed = set()  # directories the units create themselves

    for n in DAEMONS:
        svc, sock = units.get(f"strata-{n}.service"), units.get(f"strata-{n}.socket")
        if svc is None or sock is None:
            continue
        S = f"strata-{n}.service"

        def want(section, key, expected, unit=svc, name=S):
            got = value(unit, section, key)
            f.check(got == expected, f"{name}: {key}={got}, expected {expected}")

        for key, expected in [("Type", "notify"), ("NotifyAccess", "main"),
                              ("WatchdogSec", "30s"), ("Restart", "on-failure"),
                              ("RestartSec", "1s"), ("TimeoutStopSec", "10s"),
                              ("User", "_strata"), ("Group", "_strata"),
                              ("RuntimeDirectory", "strata"),
                              ("RuntimeDirectoryPreserve", "yes"),
                              ("ConfigurationDirectory", "strata"),
                              ("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                              ("UMask", "0027"),
                              ("ExecStartPre", f"{args.sbindir}/strata-{n} --check-config"),
                              ("ExecStart", f"{args.sbindir}/strata-{n}"),
                              ("ExecReload", f"{args.bindir}/stratactl reload {n}")]:
            want("Service", key, expected)
        want("Service", "StateDirectory", STATE_DIRS.get(n))
        want("Unit", "PartOf", "strata.target")
        want("Install", "WantedBy", "strata.target")
        f.check(values(svc, "Service", "SystemCallFilter")[:1] == ["@system-service"],
                f"{S}: SystemCallFilter= does not start from @system-service")
        caps = set(values(svc, "Service", "CapabilityBoundingSet"))
        ambient = set(values(svc, "Service", "AmbientCapabilities"))
        expected_caps = LBD_CAPS if n == "lbd" else set()
        f.check(caps == expected_caps, f"{S}: CapabilityBoundingSet={sorted(caps)}")
        f.check(ambient <= caps, f"{S}: ambient capabilities outside the bounding set")
        sockets = [f"strata-{n}.socket"] + (["strata-gatewayd-public.socket"]
                                            if n == "gatewayd" else [])
        f.check(values(svc, "Service", "Sockets") == sockets,
                f"{S}: Sockets={values(svc, 'Service', 'Sockets')}, expected {sockets}")

        K = f"strata-{n}.socket"
        for key, expected in [("ListenStream", f"/run/strata/{n}.sock"),
                              ("FileDescriptorName", "control"), ("SocketMode", "0660"),
                              ("SocketUser", "_strata"), ("SocketGroup", "_strata"),
                              ("Service", S)]:
            want("Socket", key, expected, sock, K)
        want("Unit", "PartOf", "strata.target", sock, K)
        want("Install", "WantedBy", "sockets.target", sock, K)

        # The shipped config's defaults must match what the units set up.
        conf = parse_conf_defaults(tree.path(os.path.join(args.sysconfdir, f"{n}.conf")))
        C = f"{args.sysconfdir}/{n}.conf"
        f.check(set(conf) == spec_keys(n),
                f"{C}: keys {sorted(set(conf) ^ spec_keys(n))} differ from the spec")
        runtime_dir = "/run/" + value(svc, "Service", "RuntimeDirectory")
        f.check(conf.get("daemon.runtime_dir") == f'"{runtime_dir}"',
                f"{C}: runtime_dir is not RuntimeDirectory= ({runtime_dir})")
        f.check(os.path.dirname(value(sock, "Socket", "ListenStream") or "") == runtime_dir,
                f"{K}: ListenStream= is not in {runtime_dir}")
        f.check(conf.get("daemon.user") == '"_strata"' and conf.get("daemon.group") == '"_strata"',
                f"{C}: user/group are not _strata")
        state = value(svc, "Service", "StateDirectory")
        if state:
            f.check(conf.get("daemon.state_dir") == f'"/var/lib/{state}"',
                    f"{C}: state_dir is not StateDirectory= (/var/lib/{state})")
            managed.add(f"/var/lib/{state}")
        for d in values(svc, "Service", "CacheDirectory"):
            managed.add(f"/var/cache/{d}")
        managed.add(runtime_dir)
        for path in (value(svc, "Service", "ExecStart"), f"{args.bindir}/stratactl"):
            f.check(os.access(tree.path(path.split()[0]), os.X_OK), f"{S}: {path} not installed")

    pub = units.get("strata-gatewayd-public.socket")
    if pub:
        for key, expected in [("ListenStream", "80"), ("FileDescriptorName", "public"),
                              ("BindIPv6Only", "both"), ("Service", "strata-gatewayd.service")]:
            got = value(pub, "Socket", key)
            f.check(got == expected, f"strata-gatewayd-public.socket: {key}={got}")
        conf = parse_conf_defaults(tree.path(os.path.join(args.sysconfdir, "gatewayd.conf")))
        f.check(conf.get("public.listen") == '["[::]:80"]',
                "gatewayd.conf: public.listen default is not the socket unit's port 80")
    target = units.get("strata.target")
    if target:
        wants = set(values(target, "Unit", "Wants"))
        f.check(wants == {f"strata-{n}.service" for n in DAEMONS},
                f"strata.target: Wants={sorted(wants)}")

    # tmpfiles.d must not manage what the units manage (they would fight over the mode),
    # and the parents it creates must let _strata through.
    for path, (_typ, mode, _user, group) in tmpfiles.items():
        f.check(path not in managed, f"tmpfiles.d: {path} is also created by a unit")
    for d in sorted(managed):
        parent = os.path.dirname(d)
        if parent in ("/run", "/var/lib", "/var/cache"):
            continue
        entry = tmpfiles.get(parent)
        if f.check(entry is not None, f"tmpfiles.d: {parent} (parent of {d}) missing"):
            _typ, mode, _user, group = entry
            f.check(group == "_strata" and int(mode.lstrip(":"), 8) & 0o010,
                    f"tmpfiles.d: _strata cannot traverse {parent} ({mode} {group})")
    sysusers = open(tree.path(os.path.join(args.sysusers_dir, "strata.conf"))).read()
    f.check(re.search(r"^u\s+_strata\s", sysusers, re.M) is not None,
            "sysusers.d: no 'u _strata' line")
    return f.finish("contract: units, configs, sysusers.d and tmpfiles.d agree")


def tmpfiles_lines(path):
    out = {}
    with open(path) as fh:
        for line in fh:
            fields = line.split()
            if fields and not fields[0].startswith("#"):
                out[fields[1]] = (fields[0], fields[2], fields[3].lstrip(":"),
                                  fields[4].lstrip(":"))
    return out


# ------------------------------------------------------------------ sysusers/tmpfiles

def cmd_sysusers_tmpfiles(args):
    sysusers = need_tool("systemd-sysusers")
    tmpfiles = need_tool("systemd-tmpfiles")
    if os.geteuid() != 0:
        skip("needs root (systemd-tmpfiles sets owners in the tree)")
    tree = Tree(args)
    try:
        f = Failures()
        for attempt in ("first run", "second run"):
            r = run([sysusers, f"--root={tree.root}"])
            f.check(r.returncode == 0 and (attempt == "first run" or not r.stdout.strip()),
                    f"systemd-sysusers ({attempt}): exit {r.returncode}: {r.stdout}")
            r = run([tmpfiles, f"--root={tree.root}", "--create"])
            f.check(r.returncode == 0 and not r.stdout.strip(),
                    f"systemd-tmpfiles --create ({attempt}): exit {r.returncode}: {r.stdout}")
        ids = {}
        for db in ("passwd", "group"):
            for line in open(tree.path(f"/etc/{db}")):
                fields = line.split(":")
                if fields[0] == "_strata":
                    ids[db] = fields
        f.check("passwd" in ids and "group" in ids, "_strata user/group not created")
        if "passwd" in ids:
            f.check(ids["passwd"][5] == "/var/lib/strata" and
                    ids["passwd"][6].strip().endswith("nologin"),
                    f"_strata: home/shell {ids['passwd'][5:]}")
        gid = int(ids["group"][2]) if "group" in ids else None
        uid = int(ids["passwd"][2]) if "passwd" in ids else None
        for path, mode, owner, group in [("/var/lib/strata", 0o750, 0, gid),
                                         ("/var/cache/strata", 0o750, 0, gid),
                                         ("/etc/strata", 0o755, 0, 0),
                                         ("/sys/fs/bpf/strata", 0o700, uid, gid),
                                         ("/sys/fs/bpf/strata-lbd-sandbox", 0o755, 0, 0),
                                         ("/sys/fs/bpf/strata-lbd-sandbox/strata", 0o700, 0,
                                          0)]:
            p = tree.path(path)
            if f.check(os.path.isdir(p), f"{path}: not created"):
                st = os.stat(p)
                f.check((st.st_mode & 0o7777, st.st_uid, st.st_gid) == (mode, owner, group),
                        f"{path}: {oct(st.st_mode & 0o7777)} {st.st_uid}:{st.st_gid}, expected "
                        f"{oct(mode)} {owner}:{group}")
        # Where bpffs cannot be written (containers), that line must not fail the run.
        shutil.rmtree(tree.path("/sys/fs/bpf"))
        open(tree.path("/sys/fs/bpf"), "w").close()
        r = run([tmpfiles, f"--root={tree.root}", "--create"])
        f.check(r.returncode == 0, f"systemd-tmpfiles without bpffs: exit {r.returncode}: "
                f"{r.stdout}")
        # An existing /etc/strata keeps the mode and owner the administrator gave it.
        os.chmod(tree.path("/etc/strata"), 0o750)
        run([tmpfiles, f"--root={tree.root}", "--create"])
        f.check(os.stat(tree.path("/etc/strata")).st_mode & 0o7777 == 0o750,
                "systemd-tmpfiles changed the mode of an existing /etc/strata")
        return f.finish("sysusers.d and tmpfiles.d apply cleanly and idempotently")
    finally:
        tree.close()


# ------------------------------------------------------------------ check-config

def cmd_check_config(args):
    f = Failures()
    name, exe, conf = args.daemon, args.exe, args.conf
    r = run([exe, "--check-config", "--config", conf])
    f.check(r.returncode == 0 and r.stdout.strip() == f"{conf}: ok",
            f"{name}: --check-config {conf}: exit {r.returncode}: {r.stdout.strip()}")
    defaults = parse_conf_defaults(conf)
    f.check(set(defaults) == spec_keys(name),
            f"{name}: {conf} lists {sorted(defaults)}, the spec {sorted(spec_keys(name))}")
    with tempfile.TemporaryDirectory(prefix="units-conf.") as tmp:
        full = os.path.join(tmp, f"{name}.conf")
        with open(conf) as src, open(full, "w") as dst:
            for line in src:
                # "# key = value", and the continuation lines of a long array.
                line = re.sub(r"^#(\s+\")", r"\1", line)
                dst.write(re.sub(r"^#\s*([a-z_]+\s*=)", r"\1", line))
        r = run([exe, "--check-config", "--config", full])
        f.check(r.returncode == 0, f"{name}: every key uncommented is rejected: "
                f"{r.stdout.strip()}")
    return f.finish(f"{name}: {os.path.basename(conf)} accepted, as shipped and uncommented")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def tree_args(sp):
        sp.add_argument("--meson", required=True)
        sp.add_argument("--build-root", required=True)
        sp.add_argument("--lock", required=True, help="lock file serialising the installs")
        sp.add_argument("--tree", help="check this installed tree instead of installing one "
                        "(host unit files are added to it for verify)")
        sp.add_argument("--unit-dir", required=True)
        sp.add_argument("--sbindir", required=True)
        sp.add_argument("--bindir", required=True)
        sp.add_argument("--mandir", required=True)
        sp.add_argument("--sysconfdir", required=True)
        sp.add_argument("--sysusers-dir", required=True)
        sp.add_argument("--tmpfiles-dir", required=True)

    for name, fn in [("verify", cmd_verify), ("security", cmd_security),
                     ("contract", cmd_contract), ("sysusers-tmpfiles", cmd_sysusers_tmpfiles)]:
        sp = sub.add_parser(name)
        tree_args(sp)
        sp.set_defaults(fn=fn)
        if name == "security":
            sp.add_argument("--default-max-exposure", type=float, required=True)
            sp.add_argument("--max-exposure", action="append", default=[],
                            help="UNIT=LEVEL")
    sp = sub.add_parser("check-config")
    sp.add_argument("daemon", choices=DAEMONS)
    sp.add_argument("exe")
    sp.add_argument("conf")
    sp.set_defaults(fn=cmd_check_config)
    args = p.parse_args()
    sys.exit(args.fn(args))


if __name__ == "__main__":
    main()
