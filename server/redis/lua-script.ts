import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export type RedisArgument = string | Buffer | number;

// ioredis has Buffer-reply variants of every command at runtime but declares none for EVAL/EVALSHA
// (and its callBuffer drops the command name under auto-pipelining).
interface BufferScripting {
  evalshaBuffer(sha: string, numberOfKeys: number, ...args: RedisArgument[]): Promise<unknown>;
  evalBuffer(source: string, numberOfKeys: number, ...args: RedisArgument[]): Promise<unknown>;
}

/** A Lua script run by its SHA1, loaded into Redis on first use (and again after a Redis restart). */
export class LuaScript {
  private readonly sha: string;
  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** `keys` are the KEYS the script declares (only the deploy and webhook scripts name theirs); `args` its ARGV. */
  async run(redis: Redis, args: RedisArgument[], keys: RedisArgument[] = []): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }

  async runBuffer(redis: Redis, args: RedisArgument[]): Promise<unknown> {
    try {
      return await (redis as unknown as BufferScripting).evalshaBuffer(this.sha, 0, ...args);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return (redis as unknown as BufferScripting).evalBuffer(this.source, 0, ...args);
    }
  }
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}
