/** A bad input, for a message (never a function's source or an object's contents). */
export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined) return String(value);
  if (value instanceof Date) return "an invalid Date";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}
