/**
 * The docker buildx CLI as opskit meets it on a machine: where its plugin binary is, and which version
 * answers. build runs it; doctor checks it.
 */

/** The oldest buildx with `--progress=rawjson` (v0.12.0). */
export const MIN_BUILDX_VERSION = [0, 12] as const;

/**
 * How buildx is run: as the docker CLI's plugin (`docker buildx ...`), or its plugin binary directly,
 * which buildx supports as its standalone mode and which skips the docker CLI's start-up and its
 * plugin metadata call (about 40 ms per call on the test machine).
 */
export interface BuildxBinary {
  file: string;
  prefix: string[];
}

export const DOCKER_BUILDX: BuildxBinary = { file: 'docker', prefix: ['buildx'] };

/**
 * Pure: where the docker CLI looks for its buildx plugin, in its order: `$DOCKER_CONFIG/cli-plugins`
 * (default `~/.docker/cli-plugins`), then the system directories.
 */
export function buildxPluginCandidates(env: {
  DOCKER_CONFIG?: string | undefined;
  HOME?: string | undefined;
}): string[] {
  const config = env.DOCKER_CONFIG ?? (env.HOME ? `${env.HOME}/.docker` : undefined);
  const dirs = [
    ...(config ? [`${config}/cli-plugins`] : []),
    '/usr/local/lib/docker/cli-plugins',
    '/usr/local/libexec/docker/cli-plugins',
    '/usr/lib/docker/cli-plugins',
    '/usr/libexec/docker/cli-plugins',
  ];
  return dirs.map((dir) => `${dir}/docker-buildx`);
}

/** Pure: the version `docker buildx version` prints (`github.com/docker/buildx v0.13.1 ...`, Debian's `0.13.1+ds1`). */
export function parseBuildxVersion(text: string): string | undefined {
  return /\bv?(\d+\.\d+(?:\.\d+)?)(?:[-+~][\w.+~-]*)?/.exec(text)?.[1];
}

/** Pure: whether this buildx has `--progress=rawjson`. */
export function buildxSupported(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > MIN_BUILDX_VERSION[0] || (major === MIN_BUILDX_VERSION[0] && minor >= MIN_BUILDX_VERSION[1]);
}
