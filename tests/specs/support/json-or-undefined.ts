/** The JSON value of a body, or undefined when it is not JSON (an empty body, plain text, a cut-off answer). */
export function jsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
