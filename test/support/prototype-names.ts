// Every name a plain object answers without owning it: a header or cookie so named is the case that a map built on
// `{}` loses (__proto__ sets the prototype) or misreads (constructor, toString… are found on the prototype).
export const PROTOTYPE_NAMES: readonly string[] = Object.getOwnPropertyNames(Object.prototype).sort();

/** A null-prototype map holding `value(name)` under each name. */
export function mapOf<T>(names: readonly string[], value: (name: string) => T): Record<string, T> {
  const map = Object.create(null) as Record<string, T>;
  for (const name of names) map[name] = value(name);
  return map;
}
