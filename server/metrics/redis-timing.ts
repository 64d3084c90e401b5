import type { Redis } from 'ioredis';
import type { RegistryMetrics } from './metrics.js';

/**
 * Times every command the client sends into berth_redis_command_duration_seconds. ioredis has no command
 * hook, so sendCommand, the one method all commands (pipelined ones too) pass through, is wrapped.
 */
export function timeRedisCommands(redis: Redis, metrics: RegistryMetrics): void {
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (command, stream) => {
    const stop = metrics.redisDuration.startTimer({ command: command.name });
    command.promise.then(
      () => stop(),
      () => stop(),
    );
    return send(command, stream);
  };
}
