#!/usr/bin/env bash
# The compat run (issue 16): deploy, cutover and rollback on what operators ran before Compose v2 and a
# current Engine: bookworm's Engine 20.10 with docker-compose 1.29 (v1). scripts/test-env.sh switches
# the Engine (each has its own data root; the offline images are loaded from its saved tar), the tests
# drive compose v1 (OPSKIT_COMPOSE_CLI=v1, which opskit honours too), and the current Engine is started
# again at the end, whatever the outcome.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
restore() { OPSKIT_TEST_ENGINE=current bash scripts/test-env.sh >&2 || echo "[test-compat] could not start the current Engine again" >&2; }
trap restore EXIT
OPSKIT_TEST_ENGINE=bookworm bash scripts/test-env.sh || exit 1
docker version --format '[test-compat] Engine {{.Server.Version}}' >&2
docker-compose version --short | sed 's/^/[test-compat] docker-compose /' >&2
npm run -s build >&2 || exit 1
OPSKIT_COMPOSE_CLI=v1 npx vitest run --project integration \
  tests/integration/deploy.test.ts tests/integration/cutover.test.ts tests/integration/tcp-only.test.ts "$@"
