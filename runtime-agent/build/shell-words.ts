/**
 * Variable expansion in Dockerfile arguments with BuildKit's shell-lexer rules: `$v`, `${v}`, `${v:-w}`,
 * `${v-w}`, `${v:+w}`, `${v+w}`, `${v:?w}`, `${v?w}`, `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, single and
 * double quotes, and the Dockerfile's escape character. `expandWord` gives one string (quotes removed);
 * `expandWords` splits into words where unquoted white space is, as ENV/ARG/LABEL/COPY arguments are split.
 */

export type Variables = ReadonlyMap<string, string>;

export class ExpansionError extends Error {}

export function expandWord(text: string, variables: Variables, escapeCharacter = '\\'): string {
  return new WordLexer(text, variables, escapeCharacter).run().text;
}

export function expandWords(text: string, variables: Variables, escapeCharacter = '\\'): string[] {
  return new WordLexer(text, variables, escapeCharacter).run().words;
}

/**
 * Splits at unquoted, unescaped white space without expanding anything, quotes and escapes kept in the words,
 * as BuildKit splits `ENV`/`LABEL` pairs before it expands each one: a value that expands to several words
 * stays one value.
 */
export function splitRawWords(text: string, escapeCharacter = '\\'): string[] {
  const words: string[] = [];
  let word = '';
  let quote: string | undefined;
  const characters = [...text];
  for (let index = 0; index < characters.length; index++) {
    const character = characters[index] as string;
    if (quote !== undefined) {
      if (character === quote) quote = undefined;
      word += character;
    } else if (character === escapeCharacter) {
      word += character + (characters[++index] ?? '');
    } else if (/\s/u.test(character)) {
      if (word !== '') words.push(word);
      word = '';
    } else {
      if (character === "'" || character === '"') quote = character;
      word += character;
    }
  }
  if (word !== '') words.push(word);
  return words;
}

const SPECIAL_PARAMETERS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

/** Collects the expanded text and, alongside, the words it splits into. */
class WordCollector {
  text = '';
  readonly words: string[] = [];
  private current = '';
  private inWord = false;

  /** Unquoted characters: white space ends a word. */
  addSplitting(characters: string): void {
    this.text += characters;
    for (const character of characters) {
      if (!/\s/u.test(character)) {
        this.current += character;
        this.inWord = true;
      } else if (this.inWord && this.current !== '') {
        this.words.push(this.current);
        this.current = '';
        this.inWord = false;
      }
    }
  }

  /** Quoted or escaped characters: kept whole, white space included. */
  addLiteral(characters: string): void {
    this.text += characters;
    this.current += characters;
    this.inWord = true;
  }

  finish(): { text: string; words: string[] } {
    if (this.current !== '') this.words.push(this.current);
    return { text: this.text, words: this.words };
  }
}

class WordLexer {
  private readonly characters: string[];
  private position = 0;

  constructor(
    text: string,
    private readonly variables: Variables,
    private readonly escapeCharacter: string,
  ) {
    this.characters = [...text];
  }

  run(): { text: string; words: string[] } {
    return this.until(undefined, false);
  }

  private peek(): string | undefined {
    return this.characters[this.position];
  }

  private next(): string | undefined {
    return this.characters[this.position++];
  }

  /** Reads up to `stop` (consumed) or the end; `keepEscapes` leaves escape characters in (patterns). */
  private until(stop: string | undefined, keepEscapes: boolean): { text: string; words: string[] } {
    const out = new WordCollector();
    for (let character = this.peek(); character !== undefined; character = this.peek()) {
      if (stop !== undefined && character === stop) {
        this.next();
        return out.finish();
      }
      if (character === '$') out.addSplitting(this.dollar());
      else if (character === "'") out.addLiteral(this.singleQuoted());
      else if (character === '"') out.addLiteral(this.doubleQuoted());
      else if (character === '<' && this.characters[this.position + 1] === '<') out.addLiteral(this.heredocMarker());
      else {
        this.next();
        if (character !== this.escapeCharacter) {
          out.addSplitting(character);
          continue;
        }
        const escaped = this.next();
        if (escaped === undefined) break;
        out.addLiteral(keepEscapes ? character + escaped : escaped);
      }
    }
    if (stop !== undefined) throw new ExpansionError(`unexpected end of statement while looking for matching ${stop}`);
    return out.finish();
  }

  /** `<<` and the blanks after it stay as they are, so `<<EOF` keeps its shape. */
  private heredocMarker(): string {
    this.position += 2;
    let marker = '<<';
    while (this.peek() === ' ' || this.peek() === '\t') marker += this.next();
    return marker;
  }

  private singleQuoted(): string {
    this.next();
    let text = '';
    for (;;) {
      const character = this.next();
      if (character === undefined) throw new ExpansionError('unexpected end of statement while looking for matching single-quote');
      if (character === "'") return text;
      text += character;
    }
  }

  private doubleQuoted(): string {
    this.next();
    let text = '';
    for (;;) {
      const character = this.peek();
      if (character === undefined) throw new ExpansionError('unexpected end of statement while looking for matching double-quote');
      if (character === '"') {
        this.next();
        return text;
      }
      if (character === '$') {
        text += this.dollar();
        continue;
      }
      this.next();
      const following = this.peek();
      // Inside double quotes the escape character only escapes `"`, `$` and itself; before anything else it stays.
      if (
        character === this.escapeCharacter &&
        following !== undefined &&
        (following === '"' || following === '$' || following === this.escapeCharacter)
      ) {
        text += this.next();
      } else if (character !== this.escapeCharacter || following !== undefined) {
        text += character;
      }
    }
  }

  private name(): string {
    const first = this.peek();
    if (first === undefined) return '';
    if (/\p{Nd}/u.test(first)) {
      let digits = '';
      while (this.peek() !== undefined && /\p{Nd}/u.test(this.peek() as string)) digits += this.next();
      return digits;
    }
    if (SPECIAL_PARAMETERS.has(first)) return this.next() as string;
    let name = '';
    while (this.peek() !== undefined && /[\p{L}\p{Nd}_]/u.test(this.peek() as string)) name += this.next();
    return name;
  }

  private lookup(name: string): string | undefined {
    return this.variables.get(name);
  }

  private dollar(): string {
    this.next();
    if (this.peek() !== '{') {
      const name = this.name();
      return name === '' ? '$' : (this.lookup(name) ?? '');
    }
    this.next();
    const first = this.peek();
    if (first === undefined) throw new ExpansionError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new ExpansionError('syntax error: bad substitution');
    const name = this.name();
    const operator = this.next();
    if (operator === '}') return this.lookup(name) ?? '';
    if (operator === undefined) throw new ExpansionError("syntax error: missing '}'");
    const nullIsUnset = operator === ':';
    const modifier = nullIsUnset ? this.next() : operator;
    if (modifier === undefined || !'+-?#%'.includes(modifier) || (nullIsUnset && '#%'.includes(modifier))) {
      throw new ExpansionError(`unsupported modifier (${nullIsUnset ? ':' : ''}${modifier ?? ''}) in substitution`);
    }
    const word = this.substitutionWord(modifier === '#' || modifier === '%');
    return this.substitute(name, modifier, nullIsUnset, word);
  }

  private substitutionWord(keepEscapes: boolean): string {
    try {
      return this.until('}', keepEscapes).text;
    } catch (error) {
      if (this.peek() === undefined) throw new ExpansionError("syntax error: missing '}'");
      throw error;
    }
  }

  private substitute(name: string, modifier: string, nullIsUnset: boolean, word: string): string {
    const value = this.lookup(name);
    const missing = value === undefined || (nullIsUnset && value === '');
    switch (modifier) {
      case '-':
        return missing ? word : value;
      case '+':
        return missing ? '' : word;
      case '?':
        if (!missing) return value;
        throw new ExpansionError(`${name}: ${word || (value === undefined ? 'is not allowed to be unset' : 'is not allowed to be empty')}`);
      default:
        return trimPattern(value ?? '', word, modifier === '#' ? 'prefix' : 'suffix');
    }
  }
}

/** `${v#p}` / `${v##p}` (prefix) and `${v%p}` / `${v%%p}` (suffix): the shortest match, the longest when doubled. */
function trimPattern(value: string, word: string, side: 'prefix' | 'suffix'): string {
  const greedy = word.startsWith(side === 'prefix' ? '#' : '%');
  const matcher = new RegExp(`^${globToRegExpSource(greedy ? word.slice(1) : word)}$`, 'su');
  const lengths = [...Array(value.length + 1).keys()];
  for (const length of greedy ? lengths.reverse() : lengths) {
    const part = side === 'prefix' ? value.slice(0, length) : value.slice(value.length - length);
    if (matcher.test(part)) return side === 'prefix' ? value.slice(length) : value.slice(0, value.length - length);
  }
  return value;
}

function globToRegExpSource(glob: string): string {
  let source = '';
  const characters = [...glob];
  for (let index = 0; index < characters.length; index++) {
    const character = characters[index] as string;
    if (character === '\\') {
      const escaped = characters[++index];
      if (escaped === undefined) throw new ExpansionError(`invalid pattern (${glob}) in substitution`);
      source += escapeRegExp(escaped);
    } else if (character === '*') source += '.*';
    else if (character === '?') source += '.';
    else source += escapeRegExp(character);
  }
  return source;
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
