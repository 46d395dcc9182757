/**
 * A small, strict XML parser for ONVIF SOAP responses (hostile input: whatever answers at the
 * camera's address). Namespace-aware, no DTD (a `<!DOCTYPE` is refused, so no entity expansion), only
 * the five predefined entities and numeric character references, with limits on size, depth, element
 * count, attribute count and text length. Any violation throws {@link XmlError}; nothing else escapes.
 */

export class XmlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlError';
  }
}

export interface XmlElement {
  /** Namespace URI ('' for none). */
  readonly ns: string;
  readonly local: string;
  /** Attributes by local name (namespaced attributes other than xmlns keep their local name too). */
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: readonly XmlElement[];
  /** Concatenated character data directly inside this element. */
  readonly text: string;
}

export interface XmlLimits {
  /** Max input length in characters. Default 256 KiB. */
  readonly maxChars?: number;
  /** Default 32. */
  readonly maxDepth?: number;
  /** Default 4096. */
  readonly maxElements?: number;
  /** Per element. Default 64. */
  readonly maxAttributes?: number;
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9._-]*(?::[A-Za-z_][A-Za-z0-9._-]*)?$/;
const XML_NS = 'http://www.w3.org/XML/1998/namespace';
/** One attribute, matched in place (sticky: no copy of the rest of the document per attribute). */
const NAME_AT = /[^\s/>]{1,256}/y;
const ATTR_RE = /([^\s=/>]{1,256})\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/y;

interface Building {
  ns: string;
  local: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
  qname: string;
  scope: Map<string, string>;
}

function decodeEntities(s: string, where: number): string {
  if (!s.includes('&')) return s;
  return s.replace(/&([^;&\s]{0,12});?/g, (m, body: string) => {
    if (!m.endsWith(';')) throw new XmlError(`bad entity reference at ${where}`);
    switch (body) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
    }
    const num = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(body);
    if (!num) throw new XmlError(`unknown entity &${body.slice(0, 12)}; at ${where}`);
    const cp = num[1] !== undefined ? Number.parseInt(num[1], 16) : Number(num[2]);
    if (
      cp === 0 ||
      cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff) ||
      (cp < 0x20 && cp !== 0x9 && cp !== 0xa && cp !== 0xd)
    ) {
      throw new XmlError(`bad character reference at ${where}`);
    }
    return String.fromCodePoint(cp);
  });
}

/** Parses one XML document. Throws {@link XmlError} on anything malformed or over a limit. */
export function parseXml(input: string, limits: XmlLimits = {}): XmlElement {
  const maxChars = limits.maxChars ?? 256 * 1024;
  const maxDepth = limits.maxDepth ?? 32;
  const maxElements = limits.maxElements ?? 4096;
  const maxAttrs = limits.maxAttributes ?? 64;
  if (typeof input !== 'string') throw new XmlError('not a string');
  if (input.length > maxChars) throw new XmlError(`document longer than ${maxChars} characters`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.test(input)) {
    throw new XmlError('control character in document');
  }
  let i = input.charCodeAt(0) === 0xfeff ? 1 : 0;
  const stack: Building[] = [];
  let root: XmlElement | undefined;
  let elements = 0;
  const rootScope = new Map<string, string>([['xml', XML_NS]]);

  const resolve = (qname: string, scope: Map<string, string>, isAttr: boolean): [string, string] => {
    const c = qname.indexOf(':');
    if (c < 0) return [isAttr ? '' : (scope.get('') ?? ''), qname];
    const prefix = qname.slice(0, c);
    const ns = scope.get(prefix);
    if (ns === undefined) throw new XmlError(`undeclared namespace prefix "${prefix.slice(0, 32)}"`);
    return [ns, qname.slice(c + 1)];
  };

  while (i < input.length) {
    const lt = input.indexOf('<', i);
    const textEnd = lt < 0 ? input.length : lt;
    if (textEnd > i) {
      const raw = input.slice(i, textEnd);
      const top = stack.at(-1);
      if (!top) {
        if (raw.trim() !== '') throw new XmlError(`text outside the root element at ${i}`);
      } else {
        if (raw.includes(']]>')) throw new XmlError(`"]]>" in text at ${i}`);
        top.text += decodeEntities(raw, i);
      }
    }
    if (lt < 0) break;
    i = lt;
    if (input.startsWith('<!--', i)) {
      const end = input.indexOf('-->', i + 4);
      if (end < 0) throw new XmlError('unterminated comment');
      i = end + 3;
      continue;
    }
    if (input.startsWith('<![CDATA[', i)) {
      const top = stack.at(-1);
      if (!top) throw new XmlError('CDATA outside the root element');
      const end = input.indexOf(']]>', i + 9);
      if (end < 0) throw new XmlError('unterminated CDATA');
      top.text += input.slice(i + 9, end);
      i = end + 3;
      continue;
    }
    if (input.startsWith('<!', i)) throw new XmlError('DTDs and declarations are not accepted');
    if (input.startsWith('<?', i)) {
      const end = input.indexOf('?>', i + 2);
      if (end < 0) throw new XmlError('unterminated processing instruction');
      i = end + 2;
      continue;
    }
    if (input.startsWith('</', i)) {
      const end = input.indexOf('>', i + 2);
      if (end < 0) throw new XmlError('unterminated end tag');
      const qname = input.slice(i + 2, end).trim();
      const top = stack.pop();
      if (!top || top.qname !== qname) {
        throw new XmlError(`mismatched end tag </${qname.slice(0, 40)}> at ${i}`);
      }
      const el: XmlElement = {
        ns: top.ns,
        local: top.local,
        attrs: top.attrs,
        children: top.children,
        text: top.text,
      };
      const parent = stack.at(-1);
      if (parent) parent.children.push(el);
      else root = el;
      i = end + 1;
      continue;
    }
    // Start tag.
    if (root) throw new XmlError(`content after the root element at ${i}`);
    let j = i + 1;
    NAME_AT.lastIndex = j;
    const nameM = NAME_AT.exec(input);
    const qname = nameM?.[0] ?? '';
    if (!NAME_RE.test(qname)) throw new XmlError(`bad element name at ${i}`);
    j += qname.length;
    const rawAttrs: [string, string][] = [];
    let selfClosing = false;
    for (;;) {
      while (j < input.length && /\s/.test(input[j] ?? '')) j++;
      if (j >= input.length) throw new XmlError('unterminated start tag');
      if (input.startsWith('/>', j)) {
        selfClosing = true;
        j += 2;
        break;
      }
      if (input[j] === '>') {
        j++;
        break;
      }
      ATTR_RE.lastIndex = j;
      const am = ATTR_RE.exec(input);
      if (!am || !NAME_RE.test(am[1] ?? '')) throw new XmlError(`bad attribute at ${j}`);
      if (rawAttrs.length >= maxAttrs) throw new XmlError(`more than ${maxAttrs} attributes`);
      const aname = am[1] ?? '';
      if (rawAttrs.some(([n]) => n === aname)) throw new XmlError(`duplicate attribute at ${j}`);
      rawAttrs.push([aname, decodeEntities(am[2] ?? am[3] ?? '', j)]);
      j += am[0].length;
    }
    if (stack.length >= maxDepth) throw new XmlError(`nesting deeper than ${maxDepth}`);
    if (++elements > maxElements) throw new XmlError(`more than ${maxElements} elements`);
    const parentScope = stack.at(-1)?.scope ?? rootScope;
    let scope = parentScope;
    for (const [n, v] of rawAttrs) {
      if (n === 'xmlns' || n.startsWith('xmlns:')) {
        if (scope === parentScope) scope = new Map(parentScope);
        const prefix = n === 'xmlns' ? '' : n.slice(6);
        if (prefix === 'xmlns' || (prefix === 'xml' && v !== XML_NS)) throw new XmlError('reserved prefix');
        if (prefix !== '' && v === '') throw new XmlError('empty namespace for a prefix');
        scope.set(prefix, v);
      }
    }
    const [ns, local] = resolve(qname, scope, false);
    const attrs: Record<string, string> = Object.create(null);
    for (const [n, v] of rawAttrs) {
      if (n === 'xmlns' || n.startsWith('xmlns:')) continue;
      const [, alocal] = resolve(n, scope, true);
      attrs[alocal] = v;
    }
    i = j;
    const b: Building = { ns, local, attrs, children: [], text: '', qname, scope };
    if (selfClosing) {
      const el: XmlElement = { ns, local, attrs, children: [], text: '' };
      const parent = stack.at(-1);
      if (parent) parent.children.push(el);
      else root = el;
    } else {
      stack.push(b);
    }
  }
  if (stack.length > 0) throw new XmlError(`unclosed element <${stack.at(-1)?.qname.slice(0, 40)}>`);
  if (!root) throw new XmlError('no root element');
  return root;
}

/** The first child of `el` with that namespace and local name. */
export function child(el: XmlElement | undefined, ns: string, local: string): XmlElement | undefined {
  return el?.children.find((c) => c.ns === ns && c.local === local);
}

/** Every child of `el` with that namespace and local name. */
export function childrenNamed(el: XmlElement | undefined, ns: string, local: string): XmlElement[] {
  return el ? el.children.filter((c) => c.ns === ns && c.local === local) : [];
}
