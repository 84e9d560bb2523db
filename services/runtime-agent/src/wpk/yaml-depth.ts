/**
 * MAX_JSON_DEPTH for packages sent as YAML text. The yaml library composes
 * nodes recursively: a few hundred nested `[` overflow its stack and a
 * megabyte of them takes seconds, so the text is measured before it is parsed.
 * The library's own CST parser is not recursive: its stack of nodes under
 * construction is the nesting, and feeding it one token at a time stops an
 * over-deep text as soon as it gets too deep.
 */
import { Composer, Lexer, LineCounter, Parser, YAMLParseError, type Document } from 'yaml';
import type { PathSegment } from '../../../../adapters/shared/paths.js';

/** Besides the collections, the parser's stack holds the document and the scalar being read. */
const STACK_BESIDES_COLLECTIONS = 2;
/** Aliases may not expand a few lines into a huge value (a "billion laughs"). */
const MAX_ALIAS_COUNT = 100;

/** The text nests deeper than the limit; `line` and `col` (from 1) say where it first does. */
export class YamlTooDeep extends Error {
  constructor(
    readonly maxDepth: number,
    readonly line: number,
    readonly col: number,
  ) {
    super(`nests deeper than ${maxDepth} levels (MAX_JSON_DEPTH) at line ${line}, column ${col}`);
  }
}

/**
 * `parse(text)` of the yaml library, put together from its parts so that the depth is checked after every
 * token, in the same single pass: throws YamlTooDeep, a YAMLParseError (with its line and column) or the
 * library's error about too many aliases. The text's own nesting is checked here; what aliases add shows
 * once the value is built (see valueTooDeep).
 */
export function parseYamlWithin(text: string, maxDepth: number): unknown {
  const lines = new LineCounter();
  const parser = new Parser(lines.addNewLine);
  function* tokens() {
    lines.addNewLine(0);
    for (const lexeme of new Lexer().lex(text)) {
      yield* parser.next(lexeme);
      if (parser.stack.length > maxDepth + STACK_BESIDES_COLLECTIONS) {
        const at = lines.linePos(parser.offset);
        throw new YamlTooDeep(maxDepth, at.line, at.col);
      }
    }
    yield* parser.end();
  }
  let doc: Document.Parsed | undefined;
  for (const next of new Composer().compose(tokens(), true, text.length)) {
    if (!doc) doc = next;
    else {
      doc.errors.push(
        new YAMLParseError(
          [next.range[0], next.range[1]],
          'MULTIPLE_DOCS',
          'Source contains multiple documents; send one',
        ),
      );
      break;
    }
  }
  const error = doc!.errors[0];
  if (error) {
    error.linePos = [lines.linePos(error.pos[0]), lines.linePos(error.pos[1])];
    throw error;
  }
  return doc!.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
}

interface Node {
  value: unknown;
  depth: number;
  parent: Node | undefined;
  segment: PathSegment;
}

/**
 * The path of the first array or object at level `maxDepth + 1` of a parsed value, or undefined. Iterative,
 * so a deep value cannot overflow the stack here; paths are built only for the answer.
 */
export function valueTooDeep(root: unknown, maxDepth: number): PathSegment[] | undefined {
  const todo: Node[] = [{ value: root, depth: 0, parent: undefined, segment: '' }];
  while (todo.length > 0) {
    const node = todo.pop()!;
    const v = node.value;
    if (v === null || typeof v !== 'object') continue;
    const depth = node.depth + 1;
    if (depth > maxDepth) return pathOf(node);
    if (Array.isArray(v)) v.forEach((value, i) => todo.push({ value, depth, parent: node, segment: i }));
    else for (const [k, value] of Object.entries(v)) todo.push({ value, depth, parent: node, segment: k });
  }
  return undefined;
}

function pathOf(node: Node): PathSegment[] {
  const out: PathSegment[] = [];
  for (let n: Node | undefined = node; n?.parent; n = n.parent) out.push(n.segment);
  return out.reverse();
}
