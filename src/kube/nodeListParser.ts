// A NodeList page read as it streams in: the items of the top-level "items" array are cut out of
// the byte stream one at a time, each parsed on its own (JSON.parse) and cut down at once to what
// the bridge reads (slimNode); the list around them (kind, metadata) is kept as bytes and parsed at
// the end with `"items":[]`. So at any moment there is one network chunk, one item's bytes and one
// full Node object, never a whole page: a page of 500 large Nodes is megabytes of JSON and tens of
// megabytes of objects, and as one string and one parse it lands outside the young generation and
// stays resident until a full GC.
//
// Only the structure is scanned (strings are skipped with indexOf; UTF-8 continuation bytes are
// never ASCII, so a byte scan is exact); JSON.parse validates every part the bridge reads. Within an
// item, the object or array values of the members of its top-level objects that slimNode does not
// read (metadata.managedFields, labels and annotations, status.images and conditions: most of a
// Node's bytes) are only scanned for their structure and handed to JSON.parse as `0`. A body that is not JSON,
// or not a NodeList whose items are objects (a second "items" key included), is a retryable
// KubeApiError.
//
// The apiserver writes the list's metadata before its items: once the items array opens, the head
// read so far is parsed (with the array closed) and its continue token handed to `onHead`, so that
// the next page can be requested while this one is still streaming in. That early look is only a
// hint: the page `end()` returns (parsed whole, every part validated) is what counts.

import { KubeApiError } from './errors.ts';
import { slimNode, type KubeNode, type ListPage } from './nodeApi.ts';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const ITEMS_KEY = 'items';
/** A key longer than this at the top level cannot be "items": its bytes are not collected. */
const MAX_KEY_BYTES = 64;
const CLOSE_HEAD = Buffer.from(']}');
/** What stands in for a skipped value in an item's text. */
const SKIPPED = Buffer.from('0');
/** The keys, among the members of an item's top-level objects, whose values slimNode reads. */
const KEPT_KEYS = new Set(['name', 'resourceVersion', 'podCIDR', 'podCIDRs', 'addresses']);
/** The depth (inside an item's top-level objects) whose keys are looked at. */
const MEMBER_DEPTH = 4;

type Phase = 'head' | 'items' | 'tail';

export interface NodeListParserOptions {
  /**
   * Called at most once, when the items array opens after the list's metadata: the continue token
   * read from the head (undefined when the head has none or is no JSON object). Not called when
   * the items come first or are not found in the stream.
   */
  onHead?: (head: { continue: string | undefined }) => void;
}

/** A member key read as raw bytes whose value is not read: not kept, and no escape or long key that JSON.parse might read as a kept one. */
function skippable(key: string | null): boolean {
  return key !== null && !key.includes('\\') && !KEPT_KEYS.has(key);
}

export class NodeListParser {
  private readonly what: string;
  private readonly items: KubeNode[] = [];
  /** Bytes of the list outside the items array (the array's brackets included, its content not). */
  private readonly rest: Buffer[] = [];
  private bytes = 0;
  private phase: Phase = 'head';
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** The top-level string being read (a key candidate), or null. */
  private key: Buffer[] | null = null;
  private keyBytes = 0;
  /** The last top-level string, until the next significant byte says whether it was a key. */
  private lastString: string | null = null;
  /** After `"items":`, until the value starts. */
  private itemsValueNext = false;
  /** Inside the items array, outside an item: true where an item must come next (after `[` or `,`). */
  private itemNext = true;
  private sawComma = false;
  /** The bytes of the item being read, across chunks; null between items. */
  private item: Buffer[] | null = null;
  /** After `"<key>":` of a member slimNode does not read, until its value starts. */
  private skipValueNext = false;
  /** While a skipped value is scanned: the depth it returns to when it ends; else -1. */
  private skipTo = -1;

  private readonly onHead: NodeListParserOptions['onHead'];

  constructor(what: string, options: NodeListParserOptions = {}) {
    this.what = what;
    this.onHead = options.onHead;
  }

  /** Takes the next chunk of the body; throws a KubeApiError as soon as it cannot be a NodeList. */
  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    const n = chunk.length;
    let restFrom = this.phase === 'items' ? -1 : 0;
    let itemFrom = this.item && this.skipTo < 0 ? 0 : -1;
    let keyFrom = this.key ? 0 : -1;
    let nextBackslash = -1;
    let i = 0;
    while (i < n) {
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          i++;
          continue;
        }
        if (nextBackslash < i && nextBackslash !== n) {
          nextBackslash = chunk.indexOf(BACKSLASH, i);
          if (nextBackslash < 0) nextBackslash = n;
        }
        const q = chunk.indexOf(QUOTE, i);
        const end = q < 0 ? n : q;
        if (nextBackslash < end) {
          this.escaped = true;
          i = nextBackslash + 1;
          continue;
        }
        if (q < 0) break; // the string goes on in the next chunk
        if (keyFrom >= 0) {
          if (this.key!.length === 0) {
            this.lastString = q - keyFrom <= MAX_KEY_BYTES ? chunk.toString('latin1', keyFrom, q) : null;
          } else {
            this.addKey(chunk.subarray(keyFrom, q));
            this.lastString = this.keyBytes <= MAX_KEY_BYTES ? Buffer.concat(this.key!).toString('latin1') : null;
          }
          this.key = null;
          keyFrom = -1;
        }
        this.inString = false;
        i = q + 1;
        continue;
      }
      const c = chunk[i]!;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
        i++;
        continue;
      }
      const lastString = this.lastString;
      this.lastString = null;
      const itemsValueNext = this.itemsValueNext;
      this.itemsValueNext = false;
      const skipValueNext = this.skipValueNext;
      this.skipValueNext = false;
      if (this.phase === 'items' && this.depth === 2 && !this.item) {
        // Between items: only `{` (an item), `,` and `]`.
        if (c === OPEN_BRACE && this.itemNext) {
          this.item = [];
          itemFrom = i;
          this.depth = 3;
        } else if (c === COMMA && !this.itemNext) {
          this.itemNext = true;
          this.sawComma = true;
        } else if (c === CLOSE_BRACKET && !(this.itemNext && this.sawComma)) {
          this.phase = 'tail';
          this.depth = 1;
          restFrom = i;
        } else {
          // A misplaced bracket or comma is broken JSON; anything else starts a value that is no object.
          if (c === OPEN_BRACE || c === CLOSE_BRACE || c === OPEN_BRACKET || c === CLOSE_BRACKET || c === COMMA) throw this.notJson();
          throw this.notNodeList('an item that is no object');
        }
        i++;
        continue;
      }
      if (c === QUOTE) {
        this.inString = true;
        if (this.depth === 1 || (this.depth === MEMBER_DEPTH && this.item && this.skipTo < 0)) {
          this.key = [];
          this.keyBytes = 0;
          keyFrom = i + 1;
        }
      } else if (c === COLON) {
        if (this.depth === 1 && lastString === ITEMS_KEY) {
          if (this.phase !== 'head') throw this.notNodeList('a second "items" key');
          this.itemsValueNext = true;
        } else if (this.depth === MEMBER_DEPTH && this.item && this.skipTo < 0 && skippable(lastString)) {
          this.skipValueNext = true;
        }
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
        if (skipValueNext) {
          this.item!.push(chunk.subarray(itemFrom, i), SKIPPED);
          itemFrom = -1;
          this.skipTo = this.depth;
        }
        this.depth++;
        if (itemsValueNext && c === OPEN_BRACKET && this.depth === 2) {
          this.rest.push(chunk.subarray(restFrom, i + 1));
          restFrom = -1;
          this.phase = 'items';
          if (this.onHead) this.surfaceHead();
        }
      } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        this.depth--;
        if (this.depth < 0) throw this.notJson();
        if (this.depth === this.skipTo) {
          this.skipTo = -1;
          itemFrom = i + 1;
        } else if (this.item && this.depth === 2) {
          this.item.push(chunk.subarray(itemFrom, i + 1));
          this.takeItem();
          itemFrom = -1;
        }
      }
      i++;
    }
    if (keyFrom >= 0) this.addKey(chunk.subarray(keyFrom));
    if (itemFrom >= 0) this.item!.push(chunk.subarray(itemFrom));
    if (restFrom >= 0) this.rest.push(chunk.subarray(restFrom));
  }

  /** The page, once the body has ended. */
  end(): ListPage {
    if (this.inString || this.depth !== 0 || this.item) throw this.notJson();
    let list: { metadata?: { resourceVersion?: unknown; continue?: unknown }; items?: unknown };
    try {
      list = JSON.parse(Buffer.concat(this.rest).toString('utf8')) as typeof list;
    } catch {
      throw this.notJson();
    }
    if (list === null || typeof list !== 'object' || !Array.isArray(list.items)) throw this.notNodeList('no items');
    let items = this.items;
    if (this.phase === 'head') {
      // "items" was not found in the stream (e.g. an escaped key): the list parsed whole has it.
      if (!list.items.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x))) throw this.notNodeList('an item that is no object');
      items = list.items.map(slimNode);
    } else if (list.items.length !== 0) {
      throw this.notNodeList('a second "items" key');
    }
    const rv = list.metadata?.resourceVersion;
    const cont = list.metadata?.continue;
    return {
      items,
      resourceVersion: typeof rv === 'string' ? rv : '',
      continue: typeof cont === 'string' && cont !== '' ? cont : undefined,
    };
  }

  /** The head so far ends with the items array's `[`: closed, it is the list without items. */
  private surfaceHead(): void {
    let cont: string | undefined;
    try {
      const head = JSON.parse(Buffer.concat([...this.rest, CLOSE_HEAD]).toString('utf8')) as { metadata?: { continue?: unknown } } | null;
      const c = head?.metadata?.continue;
      cont = typeof c === 'string' && c !== '' ? c : undefined;
    } catch {
      cont = undefined; // broken JSON: end() says so
    }
    this.onHead!({ continue: cont });
  }

  private addKey(part: Buffer): void {
    this.keyBytes += part.length;
    if (this.keyBytes <= MAX_KEY_BYTES) this.key!.push(part);
  }

  private takeItem(): void {
    const parts = this.item!;
    this.item = null;
    this.itemNext = false;
    let node: unknown;
    try {
      node = JSON.parse((parts.length === 1 ? parts[0]! : Buffer.concat(parts)).toString('utf8'));
    } catch {
      throw this.notJson();
    }
    this.items.push(slimNode(node));
  }

  private notJson(): KubeApiError {
    return new KubeApiError(`${this.what}: the answer is not JSON (${this.bytes} bytes read)`, 200, true);
  }

  private notNodeList(why: string): KubeApiError {
    return new KubeApiError(`${this.what}: the answer is no NodeList (${why})`, 200, true);
  }
}

/** A whole NodeList body at once (the same parser, one chunk). */
export function parseNodeList(body: Buffer | string, what: string): ListPage {
  const p = new NodeListParser(what);
  p.push(typeof body === 'string' ? Buffer.from(body) : body);
  return p.end();
}
