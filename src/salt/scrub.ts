// Keeping secrets out of messages and logs. The password and token are never put into a message on
// purpose; scrub() is the second line of defence for text that comes from elsewhere (server error
// pages, Node error messages, URLs).

const MASK = '[REDACTED]';

/** Replaces every occurrence of each secret (of 4+ characters) in text. */
export function scrub(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const s of secrets) {
    if (s !== undefined && s.length >= 4) out = out.split(s).join(MASK);
  }
  return out;
}

/** A URL fit for a log line: no userinfo, no query, and `/all_events/<token>` masked. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    const path = u.pathname.replace(/\/(all_events|formatted_events)\/[^/]+/, `/$1/${MASK}`);
    return `${u.protocol}//${u.host}${path}`;
  } catch {
    return '[unparseable url]';
  }
}

/**
 * The human part of a salt-api error body: CherryPy error pages put it in the first <p>; JSON
 * bodies may have `return`/`status`. Bounded, single line, scrubbed.
 */
export function serverText(body: unknown, secrets: ReadonlyArray<string | undefined>): string {
  let text = '';
  if (typeof body === 'string') {
    const p = /<p>([\s\S]*?)<\/p>/i.exec(body);
    text = p ? (p[1] ?? '') : body.replace(/<[^>]*>/g, ' ');
  } else if (body !== null && typeof body === 'object') {
    const o = body as Record<string, unknown>;
    const r = o['return'] ?? o['status'] ?? o['message'];
    text = typeof r === 'string' ? r : '';
  }
  text = text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>');
  text = text.replace(/\s+/g, ' ').trim();
  if (text.length > 300) text = `${text.slice(0, 300)}…`;
  return scrub(text, secrets);
}
