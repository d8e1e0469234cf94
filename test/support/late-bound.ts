// A fixture started in beforeAll has no value when the test file's top level runs. lateBound hands the file a
// stand-in right away, so `const { nats } = useDispatcherFixture()` reads like a plain variable in every test.

/** An object that forwards every property read to `get()`, and says what is missing when `get()` has nothing yet. */
export function lateBound<T extends object>(what: string, get: () => T | undefined): T {
  const current = (): T => {
    const value = get();
    if (value === undefined) throw new Error(`${what} is not running: it starts in beforeAll, which failed or has not run`);
    return value;
  };
  return new Proxy({} as T, {
    get(_target, key) {
      const value = current();
      const property: unknown = Reflect.get(value, key, value);
      return typeof property === 'function' ? (property as (...args: unknown[]) => unknown).bind(value) : property;
    },
    set(_target, key, property) {
      return Reflect.set(current(), key, property);
    },
  });
}
