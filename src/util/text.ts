// Untrusted text on its way into a log line (CONTRIBUTING.md habit 9).

/** At most `max` characters of untrusted text, control characters escaped. */
export function shorten(s: string, max = 120): string {
  const short = s.length > max ? `${s.slice(0, max)}…` : s;
  // eslint-disable-next-line no-control-regex
  return short.replace(/[\u0000-\u001f\u007f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
