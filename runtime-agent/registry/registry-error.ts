/** A registry answered with an HTTP error: retrying the same request will not help. */
export class RegistryError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
