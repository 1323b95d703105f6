#!/usr/bin/env bash
# Readies this machine for opskit's tests, idempotently (see ../shared/ENVIRONMENT.md):
# installs what is missing through apt, starts dockerd, PostgreSQL and Redis on the host, and builds the
# offline images that stand in for the registry images real users pull. When everything is in place it
# takes a few seconds, since `npm test` runs it every time.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[test-env] %s\n' "$*" >&2; }
die() { printf '[test-env] error: %s\n' "$*" >&2; exit 1; }

cache=${OPSKIT_TEST_CACHE:-/var/cache/opskit-test}
# The Debian mirror for debootstrap: the one this machine's apt already uses (OPSKIT_TEST_MIRROR overrides).
mirror=${OPSKIT_TEST_MIRROR:-}
mkdir -p "$cache"
pg_cluster_version=15
export OPSKIT_TEST_PG_USER=${OPSKIT_TEST_PG_USER:-opskit_test}
export OPSKIT_TEST_PG_PASSWORD=${OPSKIT_TEST_PG_PASSWORD:-opskit-test-pw}

# --- 1. packages ----------------------------------------------------------------------------------
# binary -> Debian package that provides it
declare -A provides=(
  [dockerd]=docker.io
  [docker-compose]=docker-compose
  [nginx]=nginx-light
  [pg_ctlcluster]=postgresql
  [redis-server]=redis-server
  [busybox]=busybox-static
  [debootstrap]=debootstrap
)
missing=()
for bin in "${!provides[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${provides[$bin]}")
done
if [ ! -x /usr/lib/postgresql/$pg_cluster_version/bin/postgres ]; then missing+=(postgresql); fi
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}) and not root: install them with apt-get"
  log "installing: ${missing[*]}"
  apt-get update -qq >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
else
  log "packages: all present"
fi

# --- 2. what operators run: Compose v2, buildx and a current Engine, from Debian trixie --------------
# Bookworm ships Docker 20.10 and docker-compose 1.29 (end of life). Trixie's docker-compose 2.26,
# docker-buildx 0.13 and docker.io 26.1 are Go binaries that need glibc >= 2.34 (bookworm has 2.36).
# apt downloads them with a state of its own (the machine's lists stay untouched), from the same mirror
# as the machine's own sources; dpkg-deb extracts them: the plugins into the CLI plugin directory, the
# Engine beside bookworm's (which stays, for `npm run test:compat`).
engine=${OPSKIT_TEST_ENGINE:-current}   # current (trixie's 26.1) | bookworm (20.10, with compose v1)
trixie="$cache/trixie"
engine26="/usr/local/lib/opskit-test/engine-26"
plugins=/usr/libexec/docker/cli-plugins
trixie_apt() {
  apt-get -q -o Dir::Etc::sourcelist="$trixie/sources.list" -o Dir::Etc::sourceparts="$trixie/sources.list.d" \
    -o Dir::State::Lists="$trixie/lists" -o Dir::Cache="$trixie/cache" -o APT::Get::List-Cleanup=0 "$@"
}
if [ ! -x "$plugins/docker-compose" ] || [ ! -x "$plugins/docker-buildx" ] || [ ! -x "$engine26/dockerd" ]; then
  [ "$(id -u)" = 0 ] || die "the Compose v2 and buildx plugins and Engine 26 are missing and this is not root"
  [ -n "$mirror" ] || mirror=$(node "$here/apt-mirror.mjs") || die "could not read the Debian mirror from the apt sources; set OPSKIT_TEST_MIRROR"
  mkdir -p "$trixie/lists/partial" "$trixie/sources.list.d" "$trixie/cache/archives/partial" "$trixie/debs"
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s trixie main\n' "$mirror" > "$trixie/sources.list"
  rm -f "$trixie"/debs/*.deb
  log "trixie: docker-compose, docker-buildx, docker.io, tini from $mirror"
  trixie_apt update >"$trixie/apt.log" 2>&1 || { tail -5 "$trixie/apt.log" >&2; die "apt-get update for trixie failed (log: $trixie/apt.log)"; }
  (cd "$trixie/debs" && trixie_apt download docker-compose docker-buildx docker.io tini >>"$trixie/apt.log" 2>&1) \
    || { tail -5 "$trixie/apt.log" >&2; die "apt-get download from trixie failed (log: $trixie/apt.log)"; }
  rm -rf "$trixie/x"; mkdir -p "$trixie/x" "$plugins" "$engine26"
  for deb in "$trixie"/debs/*.deb; do dpkg-deb -x "$deb" "$trixie/x"; done
  install -m 0755 "$trixie/x/usr/libexec/docker/cli-plugins/docker-compose" "$plugins/docker-compose"
  install -m 0755 "$trixie/x/usr/libexec/docker/cli-plugins/docker-buildx" "$plugins/docker-buildx"
  install -m 0755 "$trixie/x/usr/sbin/dockerd" "$trixie/x/usr/sbin/docker-proxy" "$engine26/"
  # docker-init (for `--init`) is a link to tini's static build, from the tini package.
  install -m 0755 "$trixie/x/usr/bin/tini-static" "$engine26/docker-init"
  rm -rf "$trixie/x"
fi
log "plugins: compose $(docker compose version --short 2>/dev/null || echo '?'), buildx $(docker buildx version 2>/dev/null | awk '{print $2}')"

# --- 3. dockerd ---------------------------------------------------------------------------------------
# The Engine the suite runs on: trixie's 26.1 (default), or bookworm's 20.10 for the compat run. Each
# has its own data root (an Engine must not be downgraded onto a newer one's), and test-env keeps the
# pid of the dockerd it started, so that a switch stops only that one.
ours="$cache/dockerd.pid"
case "$engine" in
  current) dockerd_bin="$engine26/dockerd"; data_root=/var/lib/docker; want_major=26 ;;
  bookworm) dockerd_bin=/usr/sbin/dockerd; data_root=/var/lib/docker-bookworm; want_major=20 ;;
  *) die "OPSKIT_TEST_ENGINE=$engine: expected current or bookworm" ;;
esac
# A live dockerd: its pid is running (not a zombie) and is dockerd.
is_live_dockerd() {
  local pid=$1
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  [ "$(awk '{print $3}' "/proc/$pid/stat")" != Z ] && grep -qx dockerd "/proc/$pid/comm"
}
wait_for_docker() {
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && return 0; sleep 0.5; done
  return 1
}
server_major() { docker version --format '{{.Server.Version}}' 2>/dev/null | cut -d. -f1; }
if docker info >/dev/null 2>&1 && [ "$(server_major)" != "$want_major" ]; then
  pid=$(cat /var/run/docker.pid 2>/dev/null || true)
  [ -n "$pid" ] && [ "$pid" = "$(cat "$ours" 2>/dev/null)" ] && is_live_dockerd "$pid" \
    || die "a dockerd $(docker version --format '{{.Server.Version}}') that test-env did not start answers; stop it, or run with OPSKIT_TEST_ENGINE matching it"
  log "dockerd: stopping $(docker version --format '{{.Server.Version}}') (pid $pid) for the $engine Engine"
  kill "$pid"
  for _ in $(seq 1 60); do is_live_dockerd "$pid" || break; sleep 0.5; done
  is_live_dockerd "$pid" && die "dockerd (pid $pid) did not stop within 30 s"
fi
if docker info >/dev/null 2>&1; then
  log "dockerd: already answering ($(docker version --format '{{.Server.Version}}'))"
else
  [ "$(id -u)" = 0 ] || die "dockerd is not running and this is not root"
  pid=$(cat /var/run/docker.pid 2>/dev/null || true)
  if is_live_dockerd "$pid"; then
    log "dockerd: pid $pid is starting; waiting for it"
  else
    # A dockerd killed between sessions leaves its pid file behind, which stops the next one.
    if [ -n "$pid" ]; then log "dockerd: removing stale /var/run/docker.pid (pid $pid is gone)"; fi
    started=false
    # After a hard kill, the first start can fail while containerd's old state is cleaned up: try again.
    for attempt in 1 2 3; do
      rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
      log "dockerd: starting $dockerd_bin (overlay2, no iptables, data root $data_root), attempt $attempt"
      # docker-proxy and docker-init are looked up on PATH: the Engine's own first.
      PATH="$(dirname "$dockerd_bin"):$PATH" setsid "$dockerd_bin" --data-root "$data_root" --storage-driver=overlay2 \
        --iptables=false --ip6tables=false >/var/log/dockerd.log 2>&1 < /dev/null &
      dpid=$!
      for _ in $(seq 1 60); do
        if docker info >/dev/null 2>&1; then started=true; break; fi
        kill -0 "$dpid" 2>/dev/null || break
        sleep 0.5
      done
      $started && break
      kill "$dpid" 2>/dev/null || true
      tail -5 /var/log/dockerd.log >&2
    done
    $started || die "dockerd did not start after 3 attempts (log: /var/log/dockerd.log)"
    echo "$dpid" > "$ours"
  fi
  wait_for_docker || { tail -20 /var/log/dockerd.log >&2; die "dockerd did not answer within 30 s (log: /var/log/dockerd.log)"; }
  log "dockerd: up ($(docker version --format '{{.Server.Version}}'))"
fi

# --- 4. PostgreSQL on the host ---------------------------------------------------------------------
if ! pg_lsclusters -h 2>/dev/null | grep -q "^$pg_cluster_version main"; then
  log "postgresql: creating cluster $pg_cluster_version/main"
  pg_createcluster $pg_cluster_version main >&2
fi
if pg_lsclusters -h | awk -v v=$pg_cluster_version '$1==v && $2=="main" {print $4}' | grep -q online; then
  log "postgresql: already online"
else
  log "postgresql: starting $pg_cluster_version/main"
  pg_ctlcluster $pg_cluster_version main start >&2 || die "pg_ctlcluster $pg_cluster_version main start failed"
fi
for _ in $(seq 1 40); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.25; done
pg_isready -q -h 127.0.0.1 -p 5432 || die "postgresql does not answer on 127.0.0.1:5432"
# A password role the tests log in with over TCP (right and wrong password).
runuser -u postgres -- psql -qAt -v ON_ERROR_STOP=1 \
  -v user="$OPSKIT_TEST_PG_USER" -v pw="$OPSKIT_TEST_PG_PASSWORD" >/dev/null <<'SQL' || die "could not create the test role"
SELECT format('CREATE ROLE %I LOGIN SUPERUSER PASSWORD %L', :'user', :'pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'user', :'pw') \gexec
SQL

# --- 5. Redis on the host ----------------------------------------------------------------------------
if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  log "redis: already answering"
else
  log "redis: starting on 127.0.0.1:6379"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no >&2
  for _ in $(seq 1 40); do redis-cli -h 127.0.0.1 ping 2>/dev/null | grep -q PONG && break; sleep 0.25; done
  redis-cli -h 127.0.0.1 ping 2>/dev/null | grep -q PONG || die "redis does not answer on 127.0.0.1:6379"
fi

# --- 6. offline images --------------------------------------------------------------------------------
has_image() { docker image inspect "$1" >/dev/null 2>&1; }
label=(--change 'LABEL org.opskit.test-image=true')

import_rootfs() { # dir tag
  tar -C "$1" -c . | docker import "${label[@]}" - "$2" >/dev/null || die "docker import $2 failed"
}

debootstrap_image() { # tag packages...
  local tag=$1; shift
  local root
  root="$cache/rootfs-$(echo "$tag" | tr '/:' '__')"
  rm -rf "$root"; mkdir -p "$root"
  log "image $tag: debootstrap bookworm (minbase + $*), about 90 s"
  local include; include=$(IFS=,; echo "$*")
  debootstrap --variant=minbase --include="$include" bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; die "debootstrap for $tag failed (log: $root.log)"; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  import_rootfs "$root" "$tag"
  rm -rf "$root" "$root.log"
}

build_derived() { # tag dockerfile
  log "image $1: building from $2"
  DOCKER_BUILDKIT=0 docker build -q --label org.opskit.test-image=true -t "$1" -f "$2" "$here/images" >/dev/null 2>"$cache/build.log" \
    || { cat "$cache/build.log" >&2; die "docker build of $1 failed"; }
}

# Built once per machine, then kept as a tar that the other Engine (its own data root) loads in seconds.
images=(opskit-test/python:3.11 opskit-test/postgres:15 opskit-test/redis:7 opskit-test/nginx:1 opskit-test/busybox:latest)
# r2: the nginx image has its stream module (the relay of cutover.switch: relay needs it, as the official
# image has it built in). A new revision is a new file, so an Engine loads the images of its revision.
saved="$cache/offline-images-r2.tar"
missing_images() { for i in "${images[@]}"; do has_image "$i" || return 0; done; return 1; }
nginx_has_stream() { docker run --rm --network none --entrypoint test opskit-test/nginx:1 -e /usr/lib/nginx/modules/ngx_stream_module.so; }
if has_image opskit-test/nginx:1 && ! nginx_has_stream; then
  log "image opskit-test/nginx:1 has no stream module: replacing it (and its base)"
  docker rmi -f opskit-test/nginx:1 opskit-test/services-base:bookworm >/dev/null 2>&1 || true
  rm -f "$cache/offline-images.tar"
fi
if missing_images && [ -s "$saved" ]; then
  log "images: loading $saved into this Engine"
  docker load -q -i "$saved" >/dev/null || die "docker load of $saved failed"
fi
if missing_images && [ -z "$mirror" ]; then
  mirror=$(node "$here/apt-mirror.mjs") || die "could not read the Debian mirror from the apt sources; set OPSKIT_TEST_MIRROR"
fi
pids=()
if ! has_image opskit-test/busybox:latest; then
  log "image opskit-test/busybox:latest: from /bin/busybox"
  root="$cache/rootfs-busybox"; rm -rf "$root"; mkdir -p "$root/bin" "$root/tmp" "$root/etc"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"; done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
  echo 'nobody:x:65534:65534:nobody:/:/bin/false' >> "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  chmod 1777 "$root/tmp"
  import_rootfs "$root" opskit-test/busybox:latest
  rm -rf "$root"
fi
# The two debootstraps are independent: run them side by side.
if ! has_image opskit-test/python:3.11; then
  debootstrap_image opskit-test/python:3.11 python3 python3-flask gunicorn python3-psycopg2 python3-pytest python3-redis &
  pids+=($!)
fi
if ! has_image opskit-test/services-base:bookworm && { ! has_image opskit-test/postgres:15 || ! has_image opskit-test/redis:7 || ! has_image opskit-test/nginx:1; }; then
  debootstrap_image opskit-test/services-base:bookworm postgresql redis-server nginx-light libnginx-mod-stream curl ca-certificates &
  pids+=($!)
fi
for pid in "${pids[@]}"; do wait "$pid" || die "an image build failed"; done
has_image opskit-test/postgres:15 || build_derived opskit-test/postgres:15 "$here/images/postgres.Dockerfile"
has_image opskit-test/redis:7 || build_derived opskit-test/redis:7 "$here/images/redis.Dockerfile"
has_image opskit-test/nginx:1 || build_derived opskit-test/nginx:1 "$here/images/nginx.Dockerfile"

if [ ! -s "$saved" ]; then
  log "images: saving them to $saved for the other Engine"
  docker save -o "$saved.partial" "${images[@]}" && mv "$saved.partial" "$saved" || die "docker save failed"
fi
log "images: opskit-test/python:3.11 opskit-test/postgres:15 opskit-test/redis:7 opskit-test/nginx:1 opskit-test/busybox:latest"
log "host services: postgresql 127.0.0.1:5432 (role $OPSKIT_TEST_PG_USER), redis 127.0.0.1:6379"
log "ready"
