import { pino, type Level, type Logger } from 'pino';

/**
 * A pino logger whose lines are kept in `lines` (a new array unless one is given), each parsed as `Line`; `level`
 * defaults to pino's `info`.
 */
export function capturedLogger<Line>(level: Level = 'info', lines: Line[] = []): { readonly logger: Logger; readonly lines: Line[] } {
  const logger = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as Line) });
  return { logger, lines };
}
