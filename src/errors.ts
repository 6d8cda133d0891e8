// Errors in what a user gave krsi (a path, a value): reported as such, and
// raised before anything in the kernel changes.
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}
