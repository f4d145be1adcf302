import type { LiquidError, Token } from 'liquidjs';
import type { TemplateProblem } from './template-format';

/**
 * Where each piece of Liquid of rules/templates/ sits in its file, so that a problem liquidjs finds
 * (in its own coordinates: a piece starts at row 1) is reported at the file's line and column.
 */

/** Where line 1, column 1 of a piece of Liquid is in its file: bodies follow front matter, subjects sit in it. */
export interface Origin {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

export class Origins {
  private readonly byName = new Map<string, Origin>();
  private readonly byInput = new Map<string, string>();

  set(name: string, origin: Origin, input: string): void {
    this.byName.set(name, origin);
    if (!this.byInput.has(input)) this.byInput.set(input, name);
  }

  /** liquidjs leaves the file off some tokens (those of a failed lookup): their source text tells it. */
  ofToken(token: Token, fallback?: string): Omit<TemplateProblem, 'message'> {
    const [row = 1, col = 1] = token.getPosition();
    return this.locate(token.file ?? this.byInput.get(token.input) ?? fallback, row, col);
  }

  locate(liquidFile: string | undefined, row: number, col: number): Omit<TemplateProblem, 'message'> {
    const origin = (liquidFile && this.byName.get(liquidFile)) || { file: `templates/${liquidFile ?? '?'}`, line: 1, column: 1 };
    return { file: origin.file, line: origin.line + row - 1, column: row === 1 ? origin.column + col - 1 : col };
  }
}

/** liquidjs appends `, file:…, line:…, col:…` to its messages; the problem carries the position itself. */
export function liquidMessage(err: LiquidError): string {
  return (err.originalError?.message ?? err.message).replace(/(, file:.*?)?, line:\d+, col:\d+$/s, '');
}
