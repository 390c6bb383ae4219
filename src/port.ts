/**
 * A port written in a string (`'5353'`): decimal digits only, 1–65535; undefined otherwise.
 * `Number()` alone would also take `'0x35'`, `'5e1'`, `' 53'` or `'+53'`.
 */
export function parsePort(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}
