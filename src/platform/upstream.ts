/**
 * nginx's upstream include for the live colour: opskit's templates for each switch mode, how a template
 * is rendered, and when two configurations are the same to nginx. Deploy writes it first; cutover and
 * rollback re-render it.
 */

/** The two colours of a blue-green platform. */
export type Color = 'blue' | 'green';

export const DEFAULT_UPSTREAM_TEMPLATE = `# Managed by opskit: \`opskit cutover\` and \`opskit rollback\` replace this file. Edits by hand are lost.
# live: {{color}} ({{image}})
upstream web {
  server {{server}} max_fails=0;
  keepalive 32;
}
`;

/**
 * Socket mode's upstream: the same for every colour (the link names the colour), so a switch needs no
 * reload. No upstream keep-alive: a cached connection would keep reaching the old colour after the
 * switch, and a unix socket connect costs no handshake. The link is listed twice so that a connection
 * that fails (refused, or closed before an answer) is tried once more at once (nginx's
 * proxy_next_upstream, GETs and requests not yet sent), instead of a 502.
 */
export const DEFAULT_SOCKET_UPSTREAM_TEMPLATE = `# Managed by opskit: nginx reaches the live colour through the live.sock link, which \`opskit cutover\`
# and \`opskit rollback\` re-point without a reload. Edits by hand are lost.
# Twice: a connection that fails is tried once more through the link (proxy_next_upstream), not a 502.
upstream web {
  server {{server}} max_fails=0;
  server {{server}} max_fails=0;
}
`;

/** Pure: the same configuration to nginx (comments, blank lines and indentation aside). */
export function sameNginxConfig(a: string, b: string): boolean {
  const normal = (text: string) =>
    text
      .split('\n')
      .map((line) => line.replace(/#.*$/, '').trim().replace(/\s+/g, ' '))
      .filter(Boolean)
      .join('\n');
  return normal(a) === normal(b);
}

/** Pure: the upstream include for the live colour. Unknown placeholders are left for nginx -t to reject. */
export function renderUpstream(template: string, vars: { server: string; color: Color; image: string }): string {
  return template.replace(/\{\{\s*(server|color|image)\s*\}\}/g, (_m, key: 'server' | 'color' | 'image') => vars[key]);
}
