#!/bin/sh
# Applies VCL to the varnishd on this host through varnishadm, with the same semantics as the vaas
# agent. SSM Run Command (AWS-RunShellScript) runs it as root; the tests run it against throwaway
# varnishd instances. It needs varnishadm, base64, gzip, sha256sum, mktemp, od and awk.
#
# Usage: apply-vcl.sh [OPTIONS] ACTION [ARGUMENTS]
#
# Actions:
#   list                     Prints the loaded VCLs as [{"name":"…","status":"…"},…].
#   load NAME [LOAD OPTIONS] Compiles and loads the VCL read from stdin without activating it.
#   use NAME                 Activates NAME, then discards the older `vaas-` VCLs whose status is
#                            `available`. Other VCLs stay loaded.
#   discard NAME             Discards NAME.
#   stage UPLOAD_ID PART     Stores part PART (0, 1, …) of a large VCL, read from stdin, for
#                            `load NAME --staged UPLOAD_ID --parts N`.
#   show                     Prints {"name":"…","gzipBase64":"…"}: the active VCL's name and its
#                            source, gzip-compressed and base64-encoded to stay within SSM's
#                            output limit.
#   health                   Prints `backend.list -j` as varnishd returns it.
#   ban PATH [NAME VALUE]…   Bans cached objects whose request URL is PATH and whose request
#                            headers NAME have exactly VALUE. PATH is an origin-form URL path.
#                            Names are letters, digits and -, and values visible ASCII without
#                            `"`, `\` or spaces, so nothing can leave the ban's quoted strings.
#
# Options:
#   -n WORKDIR               varnishd work directory, as varnishadm -n takes it.
#   -T ADDRESS:PORT          varnishd admin address; needs -S.
#   -S FILE                  varnishd admin secret file.
#                            Without -n and -T, $VAAS_VARNISH_WORKDIR, $VAAS_VARNISH_ADMIN and
#                            $VAAS_VARNISH_SECRET apply, else varnishadm's default instance.
#   -t SECONDS               varnishadm timeout for connecting and reading (default 30).
#   --not-after EPOCH        Exits 75 without touching varnishd when the clock is past EPOCH (in
#                            seconds since 1970), so a command delivered late changes nothing.
#   --staging-dir DIR        Where `stage` keeps parts (default /var/lib/vaas-ssm/staging).
#
# Load options:
#   --gzip-base64            The input is the base64 text of the gzip-compressed VCL.
#   --sha256 HEX             The VCL must have this SHA-256, checked before anything is loaded.
#   --staged UPLOAD_ID       Reads the parts that `stage` stored instead of stdin, then removes them.
#   --parts N                Number of staged parts.
#
# Exit status:
#   0   done
#   64  invalid usage, name or VCL
#   65  the VCL does not compile; the compiler's message is on stdout
#   66  no VCL with that name is loaded
#   67  a VCL with that name is loaded already
#   69  varnishadm failed, or varnishd rejected the command
#   70  the VCL payload is damaged, or it cannot be stored
#   75  the deadline given with --not-after has passed, so nothing was changed
#
# Nothing from the arguments is evaluated: names are checked against [A-Za-z][A-Za-z0-9_-]* before
# use, and every expansion is quoted.

set -u
LC_ALL=C
export LC_ALL
umask 077

EXIT_USAGE=64
EXIT_COMPILE=65
EXIT_NOT_FOUND=66
EXIT_EXISTS=67
EXIT_UNAVAILABLE=69
EXIT_DAMAGED=70
EXIT_EXPIRED=75

VAAS_PREFIX=vaas-
newline='
'
MAX_NAME_LENGTH=100

admin_workdir=${VAAS_VARNISH_WORKDIR:-}
admin_address=${VAAS_VARNISH_ADMIN:-}
admin_secret=${VAAS_VARNISH_SECRET:-}
admin_timeout=30
not_after=
staging_dir=/var/lib/vaas-ssm/staging
varnishadm_command=${VAAS_VARNISHADM:-varnishadm}

fail() {
  status=$1
  shift
  printf 'apply-vcl: %s\n' "$*" >&2
  exit "$status"
}

is_digits() {
  case $1 in
    '' | *[!0-9]*) return 1 ;;
  esac
  return 0
}

check_name() {
  case $1 in
    '' | [!A-Za-z]* | *[!A-Za-z0-9_-]*)
      fail "$EXIT_USAGE" 'invalid VCL name: it must match [A-Za-z][A-Za-z0-9_-]*'
      ;;
  esac
  if [ "${#1}" -gt "$MAX_NAME_LENGTH" ]; then
    fail "$EXIT_USAGE" "invalid VCL name: longer than $MAX_NAME_LENGTH characters"
  fi
}

check_upload_id() {
  case $1 in
    '' | *[!A-Za-z0-9]*) fail "$EXIT_USAGE" 'invalid upload id: it must contain only letters and digits' ;;
  esac
  if [ "${#1}" -gt 64 ]; then
    fail "$EXIT_USAGE" 'invalid upload id: longer than 64 characters'
  fi
}

# Sends the CLI command in "$work/command" through varnishadm in pass mode (-p). Its output follows
# the CLI protocol: a 13-byte header line "%-3d %-8u" (status, body length), then the body. Sets
# cli_status and writes the body to "$work/body". Exits 69 when varnishadm cannot connect.
# Callers write the command to a file, not a pipe, because a pipe would run this in a subshell.
run_cli() {
  if [ -n "$admin_workdir" ]; then
    "$varnishadm_command" -n "$admin_workdir" -t "$admin_timeout" -p \
      <"$work/command" >"$work/reply" 2>"$work/stderr"
  elif [ -n "$admin_address" ]; then
    "$varnishadm_command" -T "$admin_address" -S "$admin_secret" -t "$admin_timeout" -p \
      <"$work/command" >"$work/reply" 2>"$work/stderr"
  else
    "$varnishadm_command" -t "$admin_timeout" -p <"$work/command" >"$work/reply" 2>"$work/stderr"
  fi
  adm_status=$?

  cli_status=$(sed -n '1s/^\([0-9][0-9][0-9]\) .*/\1/p' "$work/reply")
  sed '1d' "$work/reply" >"$work/body"
  if [ "$adm_status" -ne 0 ] || [ -z "$cli_status" ]; then
    fail "$EXIT_UNAVAILABLE" "varnishadm failed with exit status $adm_status: $(cat "$work/stderr")"
  fi
}

body_text() {
  tr '\n' ' ' <"$work/body"
}

# Prints the loaded VCLs as one JSON array. `vcl.list -j` returns [version, argv, time, {…}, …];
# each object is one record when "}" separates records. VCL names contain no JSON metacharacters.
list_vcls() {
  printf 'vcl.list -j\n' >"$work/command"
  run_cli
  if [ "$cli_status" != 200 ]; then
    fail "$EXIT_UNAVAILABLE" "vcl.list failed with status $cli_status: $(body_text)"
  fi

  awk '
    function value(key,    text) {
      if (!match($0, "\"" key "\": *\"[A-Za-z0-9_.-]*\"")) {
        return ""
      }
      text = substr($0, RSTART, RLENGTH)
      sub("^\"" key "\": *\"", "", text)
      sub("\"$", "", text)
      return text
    }
    BEGIN { RS = "}"; count = 0; printf "[" }
    {
      name = value("name")
      status = value("status")
      if (name != "" && status != "") {
        printf "%s{\"name\":\"%s\",\"status\":\"%s\"}", (count++ > 0 ? "," : ""), name, status
      }
    }
    END { print "]" }
  ' "$work/body"
}

is_loaded() {
  list_vcls >"$work/list.json"
  grep -F -q "{\"name\":\"$1\"," "$work/list.json"
}

random_marker() {
  printf 'VAAS_%s' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
}

# Writes the VCL to "$work/vcl" from stdin or from the staged parts, decoded and checked.
read_vcl() {
  if [ -n "$staged_upload" ]; then
    upload_dir=$staging_dir/$staged_upload
    : >"$work/payload"
    part=0
    while [ "$part" -lt "$staged_parts" ]; do
      if [ ! -f "$upload_dir/$part" ]; then
        fail "$EXIT_DAMAGED" "staged part $part of upload $staged_upload is missing"
      fi
      cat "$upload_dir/$part" >>"$work/payload" || fail "$EXIT_DAMAGED" 'cannot read the staged parts'
      part=$((part + 1))
    done
    rm -rf "$upload_dir"
  else
    cat >"$work/payload" || fail "$EXIT_DAMAGED" 'cannot read the VCL from stdin'
  fi

  if [ "$gzip_base64" = yes ]; then
    base64 -d <"$work/payload" >"$work/vcl.gz" || fail "$EXIT_DAMAGED" 'the VCL payload is not valid base64'
    gzip -dc <"$work/vcl.gz" >"$work/vcl" || fail "$EXIT_DAMAGED" 'the VCL payload is not valid gzip'
  else
    mv "$work/payload" "$work/vcl"
  fi

  if [ -n "$expected_sha256" ]; then
    actual_sha256=$(sha256sum <"$work/vcl" | cut -d ' ' -f 1)
    if [ "$actual_sha256" != "$expected_sha256" ]; then
      fail "$EXIT_DAMAGED" "the VCL has SHA-256 $actual_sha256, expected $expected_sha256"
    fi
  fi

  if [ ! -s "$work/vcl" ]; then
    fail "$EXIT_USAGE" 'the VCL is empty'
  fi
  if [ "$(tr -d '\000' <"$work/vcl" | wc -c)" -ne "$(wc -c <"$work/vcl")" ]; then
    fail "$EXIT_USAGE" 'the VCL contains NUL characters'
  fi
}

# varnishd 7.1.1 ends a vcl.inline heredoc wherever the marker is followed by a line break, even in
# the middle of a line, and the cut VCL may still compile. So the marker must not occur in the VCL.
vcl_inline_command() {
  marker=$(random_marker)
  while grep -F -q -- "$marker" "$work/vcl"; do
    marker=$(random_marker)
  done

  printf 'vcl.inline %s << %s\n' "$1" "$marker"
  cat "$work/vcl"
  if [ -n "$(tail -c 1 "$work/vcl")" ]; then
    printf '\n'
  fi
  printf '%s\n' "$marker"
}

do_load() {
  name=$1
  shift
  check_name "$name"

  gzip_base64=no
  expected_sha256=
  staged_upload=
  staged_parts=
  while [ $# -gt 0 ]; do
    case $1 in
      --gzip-base64) gzip_base64=yes ;;
      --sha256)
        [ $# -ge 2 ] || fail "$EXIT_USAGE" '--sha256 needs a value'
        case $2 in
          *[!0-9a-f]*) fail "$EXIT_USAGE" '--sha256 must be 64 lowercase hex digits' ;;
        esac
        [ "${#2}" -eq 64 ] || fail "$EXIT_USAGE" '--sha256 must be 64 lowercase hex digits'
        expected_sha256=$2
        shift
        ;;
      --staged)
        [ $# -ge 2 ] || fail "$EXIT_USAGE" '--staged needs an upload id'
        check_upload_id "$2"
        staged_upload=$2
        shift
        ;;
      --parts)
        [ $# -ge 2 ] && is_digits "$2" || fail "$EXIT_USAGE" '--parts needs a number'
        staged_parts=$2
        shift
        ;;
      *) fail "$EXIT_USAGE" "unknown load option: $1" ;;
    esac
    shift
  done
  if [ -n "$staged_upload" ] && [ -z "$staged_parts" ]; then
    fail "$EXIT_USAGE" '--staged needs --parts'
  fi

  read_vcl
  if is_loaded "$name"; then
    fail "$EXIT_EXISTS" "a VCL named $name is loaded already"
  fi

  vcl_inline_command "$name" >"$work/command"
  run_cli
  case $cli_status in
    200)
      printf '{"name":"%s","status":"available"}\n' "$name"
      ;;
    106)
      mv "$work/body" "$work/compiler-message"
      if is_loaded "$name"; then
        fail "$EXIT_EXISTS" "a VCL named $name is loaded already"
      fi
      cat "$work/compiler-message"
      printf '\n'
      exit "$EXIT_COMPILE"
      ;;
    *)
      fail "$EXIT_UNAVAILABLE" "vcl.inline failed with status $cli_status: $(body_text)"
      ;;
  esac
}

# Discards every `vaas-` VCL except NAME whose status is `available`. A discard that varnishd
# rejects (status 300, for example a VCL still in use) leaves that VCL for the next use.
discard_older() {
  list_vcls | tr '{' '\n' | sed -n 's/^"name":"\([A-Za-z0-9_-]*\)","status":"available"}.*/\1/p' \
    >"$work/candidates"

  discarded=
  while IFS= read -r candidate; do
    case $candidate in
      "$VAAS_PREFIX"*) ;;
      *) continue ;;
    esac
    if [ "$candidate" = "$1" ]; then
      continue
    fi

    printf 'vcl.discard %s\n' "$candidate" >"$work/command"
    run_cli
    if [ "$cli_status" = 200 ]; then
      discarded="$discarded${discarded:+,}\"$candidate\""
    else
      printf 'apply-vcl: %s not discarded, status %s: %s\n' "$candidate" "$cli_status" "$(body_text)" >&2
    fi
  done <"$work/candidates"
}

do_use() {
  check_name "$1"

  printf 'vcl.use %s\n' "$1" >"$work/command"
  run_cli
  case $cli_status in
    200) ;;
    106) fail "$EXIT_NOT_FOUND" "no VCL named $1 is loaded" ;;
    *) fail "$EXIT_UNAVAILABLE" "vcl.use failed with status $cli_status: $(body_text)" ;;
  esac

  discard_older "$1"
  printf '{"name":"%s","status":"active","discarded":[%s]}\n' "$1" "$discarded"
}

do_discard() {
  check_name "$1"

  printf 'vcl.discard %s\n' "$1" >"$work/command"
  run_cli
  case $cli_status in
    200) printf '{"name":"%s","status":"discarded"}\n' "$1" ;;
    106) fail "$EXIT_NOT_FOUND" "no VCL named $1 is loaded" ;;
    *) fail "$EXIT_UNAVAILABLE" "vcl.discard failed with status $cli_status: $(body_text)" ;;
  esac
}

do_show() {
  list_vcls >"$work/list.json"
  active=$(sed -n 's/.*{"name":"\([A-Za-z0-9_.-]*\)","status":"active"}.*/\1/p' "$work/list.json")
  [ -n "$active" ] || fail "$EXIT_NOT_FOUND" 'no VCL is active'
  check_name "$active"

  printf 'vcl.show %s\n' "$active" >"$work/command"
  run_cli
  [ "$cli_status" = 200 ] || fail "$EXIT_UNAVAILABLE" "vcl.show failed with status $cli_status: $(body_text)"
  printf '{"name":"%s","gzipBase64":"%s"}\n' "$active" "$(gzip -c "$work/body" | base64 | tr -d '\n')"
}

do_health() {
  printf 'backend.list -j\n' >"$work/command"
  run_cli
  [ "$cli_status" = 200 ] || fail "$EXIT_UNAVAILABLE" "backend.list failed with status $cli_status: $(body_text)"
  cat "$work/body"
}

# Succeeds when the whole value (no line breaks) matches the extended regular expression.
matches() {
  case $1 in *"$newline"*) return 1 ;; esac
  printf '%s\n' "$1" | grep -Eq "$2"
}

do_ban() {
  [ "${#1}" -le 2048 ] && matches "$1" "^/[A-Za-z0-9._~!\$&'()*+,;=:@%/?-]*\$" || fail "$EXIT_USAGE" 'invalid ban path'
  expression="req.url == \"$1\""
  shift
  while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || fail "$EXIT_USAGE" 'a ban header needs a name and a value'
    matches "$1" '^[A-Za-z0-9][A-Za-z0-9-]{0,63}$' || fail "$EXIT_USAGE" 'invalid ban header name'
    [ "${#2}" -le 1024 ] && matches "$2" '^[]!#-[^-~]+$' || fail "$EXIT_USAGE" 'invalid ban header value'
    expression="$expression && req.http.$1 == \"$2\""
    shift 2
  done

  printf 'ban %s\n' "$expression" >"$work/command"
  run_cli
  [ "$cli_status" = 200 ] || fail "$EXIT_UNAVAILABLE" "ban failed with status $cli_status: $(body_text)"
  printf '{"banned":true}\n'
}

# Stores one part of a large VCL. Part 0 creates the upload directory and fails when it exists, so
# two uploads cannot mix. Uploads older than an hour are left-overs of failed reloads and go first.
do_stage() {
  check_upload_id "$1"
  is_digits "$2" || fail "$EXIT_USAGE" 'the part number must be a number'

  mkdir -p "$staging_dir" || fail "$EXIT_DAMAGED" "cannot create $staging_dir"
  find "$staging_dir" -mindepth 1 -maxdepth 1 -type d -mmin +60 -exec rm -rf {} + 2>/dev/null

  upload_dir=$staging_dir/$1
  if [ "$2" -eq 0 ]; then
    mkdir "$upload_dir" || fail "$EXIT_DAMAGED" "cannot create the upload directory for $1"
  elif [ ! -d "$upload_dir" ] || [ -L "$upload_dir" ]; then
    fail "$EXIT_DAMAGED" "upload $1 has no directory: part 0 is missing or expired"
  fi

  cat >"$upload_dir/$2.partial" || fail "$EXIT_DAMAGED" "cannot store part $2 of upload $1"
  mv "$upload_dir/$2.partial" "$upload_dir/$2" || fail "$EXIT_DAMAGED" "cannot store part $2 of upload $1"
  printf '{"upload":"%s","part":%s}\n' "$1" "$2"
}

while [ $# -gt 0 ]; do
  case $1 in
    -n)
      [ $# -ge 2 ] || fail "$EXIT_USAGE" '-n needs a directory'
      admin_workdir=$2
      shift 2
      ;;
    -T)
      [ $# -ge 2 ] || fail "$EXIT_USAGE" '-T needs an address'
      admin_address=$2
      shift 2
      ;;
    -S)
      [ $# -ge 2 ] || fail "$EXIT_USAGE" '-S needs a file'
      admin_secret=$2
      shift 2
      ;;
    -t)
      [ $# -ge 2 ] && is_digits "$2" || fail "$EXIT_USAGE" '-t needs a number of seconds'
      admin_timeout=$2
      shift 2
      ;;
    --not-after)
      [ $# -ge 2 ] && is_digits "$2" || fail "$EXIT_USAGE" '--not-after needs seconds since 1970'
      not_after=$2
      shift 2
      ;;
    --staging-dir)
      [ $# -ge 2 ] || fail "$EXIT_USAGE" '--staging-dir needs a directory'
      staging_dir=$2
      shift 2
      ;;
    -*) fail "$EXIT_USAGE" "unknown option: $1" ;;
    *) break ;;
  esac
done

if [ -n "$admin_address" ] && [ -z "$admin_secret" ]; then
  fail "$EXIT_USAGE" '-T needs -S with the secret file'
fi
if [ -n "$admin_workdir" ] && [ -n "$admin_address" ]; then
  fail "$EXIT_USAGE" '-n and -T exclude each other'
fi
if [ -n "$not_after" ] && [ "$(date +%s)" -gt "$not_after" ]; then
  fail "$EXIT_EXPIRED" "the deadline $not_after has passed, so nothing was changed"
fi
[ $# -ge 1 ] || fail "$EXIT_USAGE" 'missing action: list, load, use, discard, stage, show, health or ban'

work=$(mktemp -d "${TMPDIR:-/tmp}/vaas-apply-vcl.XXXXXX") || fail "$EXIT_DAMAGED" 'mktemp failed'
trap 'rm -rf "$work"' EXIT
trap 'exit 70' HUP INT TERM

action=$1
shift
case $action in
  list)
    [ $# -eq 0 ] || fail "$EXIT_USAGE" 'list takes no arguments'
    list_vcls
    ;;
  load)
    [ $# -ge 1 ] || fail "$EXIT_USAGE" 'load needs a VCL name'
    do_load "$@"
    ;;
  use)
    [ $# -eq 1 ] || fail "$EXIT_USAGE" 'use needs exactly one VCL name'
    do_use "$1"
    ;;
  discard)
    [ $# -eq 1 ] || fail "$EXIT_USAGE" 'discard needs exactly one VCL name'
    do_discard "$1"
    ;;
  stage)
    [ $# -eq 2 ] || fail "$EXIT_USAGE" 'stage needs an upload id and a part number'
    do_stage "$1" "$2"
    ;;
  show)
    [ $# -eq 0 ] || fail "$EXIT_USAGE" 'show takes no arguments'
    do_show
    ;;
  health)
    [ $# -eq 0 ] || fail "$EXIT_USAGE" 'health takes no arguments'
    do_health
    ;;
  ban)
    [ $# -ge 1 ] || fail "$EXIT_USAGE" 'ban needs a path'
    do_ban "$@"
    ;;
  *) fail "$EXIT_USAGE" "unknown action: $action" ;;
esac
