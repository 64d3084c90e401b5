import type { Redis } from 'ioredis';
import { BuildKeys } from './build-keys.js';
import type { BuildProject } from './build-types.js';

// Creating refuses to overwrite; updating refuses to create: one step each, so two admins never half-apply.
const PUT_PROJECT = `
local exists = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
if ARGV[3] == 'create' and exists then return 0 end
if ARGV[3] == 'update' and not exists then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`;

/** Build projects and their secrets in the registry's Redis. */
export class ProjectStore {
  private readonly keys: BuildKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = new BuildKeys(prefix);
  }

  async put(project: BuildProject, mode: 'create' | 'update'): Promise<boolean> {
    return (await this.redis.eval(PUT_PROJECT, 1, this.keys.projects(), project.name, JSON.stringify(project), mode)) === 1;
  }

  async get(name: string): Promise<BuildProject | undefined> {
    const text = await this.redis.hget(this.keys.projects(), name);
    return text === null ? undefined : (JSON.parse(text) as BuildProject);
  }

  async list(): Promise<BuildProject[]> {
    return Object.values(await this.redis.hgetall(this.keys.projects()))
      .map((text) => JSON.parse(text) as BuildProject)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async remove(name: string): Promise<boolean> {
    const replies = await this.redis
      .multi()
      .hdel(this.keys.projects(), name)
      .del(this.keys.secrets(name))
      .hdel(this.keys.builders(), name)
      .exec();
    return replies?.[0]?.[1] === 1;
  }

  async setSecret(project: string, id: string, value: string): Promise<void> {
    await this.redis.hset(this.keys.secrets(project), id, value);
  }

  async removeSecret(project: string, id: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.secrets(project), id)) === 1;
  }

  async secretNames(project: string): Promise<string[]> {
    return (await this.redis.hkeys(this.keys.secrets(project))).sort();
  }

  async secrets(project: string): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.secrets(project));
  }
}
