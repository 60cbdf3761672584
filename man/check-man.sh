#!/bin/sh
# Lints the built man pages (meson test 'man-pages'). Fails when
#  - a daemon has no strata-NAME.8 or NAME.conf.5, or strata.7 / stratactl.8 is missing;
#    the daemons are the --daemons list plus every daemons/NAME/ folder of the source tree,
#    so adding a daemon without its pages fails here;
#  - groff (-ww, with tbl, UTF-8) or man (--warnings, MANWIDTH=80) prints any warning;
#  - a rendered line is wider than the 80 columns asked for;
#  - .TH does not match the file name, or whatis (lexgrog) cannot parse the NAME section;
#  - a template token (@WORD@) was left in the output;
#  - NAME.conf.5 lacks a "key = default" line that the packaged etc/NAME.conf lists: both
#    are written from the daemon's config schema, and this catches one drifting from it.
#
# Usage: check-man.sh [--daemons "dnsd lbd ..."] [--source-root DIR] PAGE...
set -u

width=80
daemons=""
source_root=""
while [ $# -gt 0 ]; do
    case "$1" in
    --daemons) daemons="$2"; shift 2 ;;
    --source-root) source_root="$2"; shift 2 ;;
    --) shift; break ;;
    -*) echo "check-man.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
if [ $# -eq 0 ]; then
    echo "usage: check-man.sh [--daemons LIST] [--source-root DIR] PAGE..." >&2
    exit 2
fi

if ! command -v groff >/dev/null 2>&1; then
    echo "SKIP: groff not installed (apt-get install groff-base man-db)"
    exit 77
fi
have_man=false
command -v man >/dev/null 2>&1 && have_man=true
have_lexgrog=false
command -v lexgrog >/dev/null 2>&1 && have_lexgrog=true

failed=0
fail() {
    echo "FAIL: $*"
    failed=1
}

# Every page to expect, by file name.
if [ -n "$source_root" ] && [ -d "$source_root/daemons" ]; then
    for dir in "$source_root"/daemons/*/; do
        [ -d "$dir" ] || continue
        name=$(basename "$dir")
        [ "$name" = stratactl ] && continue
        case " $daemons " in *" $name "*) ;; *) daemons="$daemons $name" ;; esac
    done
fi
expected="strata.7 stratactl.8"
for name in $daemons; do
    expected="$expected strata-$name.8 $name.conf.5"
done
for want in $expected; do
    found=false
    for page in "$@"; do
        [ "$(basename "$page")" = "$want" ] && [ -s "$page" ] && found=true
    done
    $found || fail "$want: page missing"
done

out=$(mktemp)
trap 'rm -f "$out" "$out.txt"' EXIT

for page in "$@"; do
    base=$(basename "$page")
    if [ ! -s "$page" ]; then
        fail "$base: missing or empty"
        continue
    fi

    # .TH "name" "section" must match the file name: man and mandb index by it.
    title="${base%.*}"
    section="${base##*.}"
    grep -q "^\.TH \"$title\" \"$section\"" "$page" ||
        fail "$base: .TH does not name \"$title\" \"$section\""

    if grep -n '@[A-Za-z_][A-Za-z0-9_]*@' "$page" >"$out"; then
        fail "$base: template token left in the output:"
        cat "$out"
    fi

    # -t: scdoc writes tables for tbl. -z: no output, only diagnostics.
    if ! LC_ALL=C.UTF-8 groff -t -ww -z -man -K utf-8 -Tutf8 "$page" >"$out" 2>&1 ||
        [ -s "$out" ]; then
        fail "$base: groff warnings:"
        cat "$out"
    fi

    # The page as man shows it on an 80-column terminal, through man-db's own pipeline.
    # ASCII output so that awk counts one byte per column (col -x expands tabs). Literal
    # blocks are not filled: a long command line runs off the screen without any warning.
    if $have_man; then
        if ! LC_ALL=C MANWIDTH=$width MAN_DISABLE_SECCOMP=1 \
            man --warnings=w -E ascii -l "$page" 2>"$out" >"$out.txt" || [ -s "$out" ]; then
            fail "$base: man warnings:"
            cat "$out"
        fi
        col -bx <"$out.txt" | awk -v max="$width" -v page="$base" '
            length($0) > max { printf "%s:%d: %d columns: %s\n", page, NR, length($0), $0; bad = 1 }
            END { exit bad }' >"$out" || {
            fail "$base: rendered lines wider than $width columns:"
            cat "$out"
        }

        # Every "key = value" of the packaged config must appear in the page's example.
        conf_src="$source_root/etc/$title"
        case "$base" in
        *.conf.5)
            if [ -n "$source_root" ] && [ -f "$conf_src" ]; then
                col -bx <"$out.txt" | awk '
                    NR == FNR { sub(/^ +/, ""); sub(/ +$/, ""); page[$0] = 1; next }
                    /^#? *[a-z_][a-z0-9_]* = / {
                        sub(/^# */, ""); sub(/ +$/, "")
                        if (!($0 in page)) { print "  " $0; bad = 1 }
                    }
                    END { exit bad }' - "$conf_src" >"$out" || {
                    fail "$base: lines of etc/$title missing from the page:"
                    cat "$out"
                }
            fi
            ;;
        esac
    fi

    if $have_lexgrog && ! lexgrog "$page" >"$out" 2>&1; then
        fail "$base: whatis cannot parse the NAME section:"
        cat "$out"
    fi
done

if [ "$failed" -ne 0 ]; then
    exit 1
fi
echo "ok: $# pages"
