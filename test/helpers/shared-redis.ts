import test from 'ava';
import type { Redis } from 'ioredis';
import { RedisServer } from './redis-server.js';

/**
 * One redis-server for all the tests of a file and a client connected to it: started before them, stopped after
 * them. The returned function gives the client.
 */
export function sharedRedis(): () => Redis {
  let server: RedisServer | undefined;
  let client: Redis | undefined;
  test.before(async () => {
    server = await RedisServer.start();
    client = server.client();
  });
  test.after.always(async () => {
    client?.disconnect();
    await server?.stop();
  });
  return () => {
    if (!client) throw new Error('the shared Redis is used before test.before ran');
    return client;
  };
}
