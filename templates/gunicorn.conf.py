# gunicorn's settings for {{project}} (written by opskit {{version}}); gunicorn reads this file from
# the working directory. The worker count is WEB_CONCURRENCY (PAT-018: 2 x CPUs + 1).
import os
import socket

port = os.environ.get("PORT", "8000")
bind = [f"0.0.0.0:{port}"]

# Blue-green without a reload: the web container also listens on a unix socket named after its hostname
# (Docker's default hostname is the container id's first 12 characters) in the directory it shares with
# nginx; `opskit cutover` points nginx's live.sock link at the new colour's socket. Without the shared
# directory (a plain `docker run`), TCP only.
socket_dir = os.environ.get("OPSKIT_SOCKET_DIR", "/run/opskit")
if os.path.isdir(socket_dir) and os.access(socket_dir, os.W_OK):
    bind.append(f"unix:{socket_dir}/web-{socket.gethostname()}.sock")

# The socket must be connectable by nginx's worker user, which is another user (nobody, www-data or
# nginx, by image) and drops any supplementary group when nginx switches to it: so the socket is open to
# all inside the shared directory. Other users of the host cannot reach it: its host directory sits in
# the project's run/, which opskit keeps private (0700); containers reach it through their mount.
umask = 0o000
accesslog = "-"
# A retired colour finishes the requests it holds (SIGTERM), up to this many seconds.
graceful_timeout = 20
