// String.prototype.isWellFormed is ES2024; Node 20 (V8 11.3) has it. Declared alone rather than by
// raising `lib` to es2024, which would also admit APIs Node 20 lacks (Promise.withResolvers…).
interface String {
  isWellFormed(): boolean;
}
