import type { Redis } from 'ioredis';
import { RegistryKeys } from '../metadata/keys.js';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import { ROBOT_PREFIX, type Identity, type IdentityStore } from './identities.js';
import { hashPassword, hashRandomSecret, newRandomSecret, passwordMatches, randomSecretMatches } from './secrets.js';

const ACCOUNT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

interface StoredUser {
  passwordHash: string;
  groups: string[];
  admin: boolean;
  createdAt: string;
}

interface StoredRobot {
  secretHash: string;
  groups: string[];
  expiresAt?: string;
  description?: string;
  createdAt: string;
}

export interface UserSummary {
  name: string;
  groups: string[];
  admin: boolean;
  createdAt: string;
}

export interface RobotSummary {
  /** The name it logs in with, `robot$<name>`. */
  username: string;
  groups: string[];
  expiresAt?: string;
  description?: string;
  createdAt: string;
  lastUsedAt?: string;
}

export interface NewRobot {
  name: string;
  groups?: string[];
  expiresAt?: Date;
  description?: string;
}

export function assertAccountName(name: string): void {
  if (!ACCOUNT_NAME.test(name)) {
    throw new CodedError(
      DistributionErrors.NAME_INVALID,
      'account names are 1-64 characters of a-z, 0-9, ".", "_" and "-", starting with a letter or digit',
    );
  }
}

/**
 * Users (bcrypt password hashes) and robot accounts (hashed random secrets) in Redis, one hash per kind keyed
 * by name, so listing and lookup are single commands. Robots' last-use times are a separate hash, written on
 * every login without rewriting the account.
 */
export class RedisIdentityStore implements IdentityStore {
  private readonly usersKey: string;
  private readonly robotsKey: string;
  private readonly robotsUsedKey: string;
  private readonly generationsKey: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly now: () => Date = () => new Date(),
  ) {
    const keys = new RegistryKeys(prefix);
    this.usersKey = keys.authUsers();
    this.robotsKey = keys.authRobots();
    this.robotsUsedKey = keys.authRobotsLastUsed();
    this.generationsKey = keys.authGenerations();
  }

  async knows(username: string): Promise<boolean> {
    const robot = robotName(username);
    return (await this.redis.hexists(robot === undefined ? this.usersKey : this.robotsKey, robot ?? username)) === 1;
  }

  async verify(username: string, secret: string): Promise<Identity | undefined> {
    const robot = robotName(username);
    if (robot === undefined) {
      const user = await this.readUser(username);
      return (await passwordMatches(secret, user?.passwordHash)) && user ? userIdentity(username, user) : undefined;
    }
    const stored = await this.readRobot(robot);
    if (!randomSecretMatches(secret, stored?.secretHash) || !stored || this.expired(stored)) return undefined;
    await this.redis.hset(this.robotsUsedKey, robot, this.now().toISOString());
    return robotIdentity(robot, stored);
  }

  async lookup(username: string): Promise<Identity | undefined> {
    const robot = robotName(username);
    if (robot === undefined) {
      const user = await this.readUser(username);
      return user && userIdentity(username, user);
    }
    const stored = await this.readRobot(robot);
    return stored && !this.expired(stored) ? robotIdentity(robot, stored) : undefined;
  }

  /** Creates the user or replaces its password, groups and role. */
  async putUser(name: string, password: string, options: { groups?: string[]; admin?: boolean } = {}): Promise<UserSummary> {
    assertAccountName(name);
    if (password.length < 8) throw new CodedError(DistributionErrors.ACCOUNT_INVALID, 'passwords must be at least 8 characters');
    const previous = await this.readUser(name);
    const user: StoredUser = {
      passwordHash: await hashPassword(password),
      groups: options.groups ?? previous?.groups ?? [],
      admin: options.admin ?? previous?.admin ?? false,
      createdAt: previous?.createdAt ?? this.now().toISOString(),
    };
    // Any change (password, groups, role) revokes the tokens issued before it (see revocation.ts).
    await this.redis.multi().hset(this.usersKey, name, JSON.stringify(user)).hincrby(this.generationsKey, `user:${name}`, 1).exec();
    return userSummary(name, user);
  }

  async deleteUser(name: string): Promise<boolean> {
    const [[, removed]] = (await this.redis.multi().hdel(this.usersKey, name).hincrby(this.generationsKey, `user:${name}`, 1).exec()) as [
      [null, number],
    ];
    return removed === 1;
  }

  async listUsers(): Promise<UserSummary[]> {
    const entries = Object.entries(await this.redis.hgetall(this.usersKey));
    return entries.map(([name, json]) => userSummary(name, JSON.parse(json) as StoredUser)).sort(byName);
  }

  /** Creates a robot and returns its secret: the only time it exists anywhere outside the caller. */
  async createRobot(options: NewRobot): Promise<{ robot: RobotSummary; secret: string }> {
    assertAccountName(options.name);
    const secret = newRandomSecret();
    const stored: StoredRobot = {
      secretHash: hashRandomSecret(secret),
      groups: options.groups ?? [],
      expiresAt: options.expiresAt?.toISOString(),
      description: options.description,
      createdAt: this.now().toISOString(),
    };
    if ((await this.redis.hsetnx(this.robotsKey, options.name, JSON.stringify(stored))) === 0) {
      throw new CodedError(DistributionErrors.ACCOUNT_EXISTS, `robot account ${ROBOT_PREFIX}${options.name} already exists`);
    }
    return { robot: robotSummary(options.name, stored, undefined), secret };
  }

  /** A new secret for an existing robot, returned once; the old secret and every token issued with it stop working. */
  async regenerateRobotSecret(name: string): Promise<{ robot: RobotSummary; secret: string } | undefined> {
    const stored = await this.readRobot(name);
    if (!stored) return undefined;
    const secret = newRandomSecret();
    const updated: StoredRobot = { ...stored, secretHash: hashRandomSecret(secret) };
    await this.redis.multi().hset(this.robotsKey, name, JSON.stringify(updated)).hincrby(this.generationsKey, `robot:${name}`, 1).exec();
    return { robot: robotSummary(name, updated, (await this.redis.hget(this.robotsUsedKey, name)) ?? undefined), secret };
  }

  async deleteRobot(name: string): Promise<boolean> {
    const [[, removed]] = (await this.redis
      .multi()
      .hdel(this.robotsKey, name)
      .hdel(this.robotsUsedKey, name)
      .hincrby(this.generationsKey, `robot:${name}`, 1)
      .exec()) as [[null, number]];
    return removed === 1;
  }

  async listRobots(): Promise<RobotSummary[]> {
    const [robots, used] = await Promise.all([this.redis.hgetall(this.robotsKey), this.redis.hgetall(this.robotsUsedKey)]);
    return Object.entries(robots)
      .map(([name, json]) => robotSummary(name, JSON.parse(json) as StoredRobot, used[name]))
      .sort((a, b) => a.username.localeCompare(b.username));
  }

  private async readUser(name: string): Promise<StoredUser | undefined> {
    const json = await this.redis.hget(this.usersKey, name);
    return json === null ? undefined : (JSON.parse(json) as StoredUser);
  }

  private async readRobot(name: string): Promise<StoredRobot | undefined> {
    const json = await this.redis.hget(this.robotsKey, name);
    return json === null ? undefined : (JSON.parse(json) as StoredRobot);
  }

  private expired(robot: StoredRobot): boolean {
    return robot.expiresAt !== undefined && Date.parse(robot.expiresAt) <= this.now().getTime();
  }
}

function robotName(username: string): string | undefined {
  return username.startsWith(ROBOT_PREFIX) ? username.slice(ROBOT_PREFIX.length) : undefined;
}

function userIdentity(name: string, user: StoredUser): Identity {
  return { kind: 'user', name, groups: user.groups, admin: user.admin };
}

function robotIdentity(name: string, robot: StoredRobot): Identity {
  return { kind: 'robot', name: `${ROBOT_PREFIX}${name}`, groups: robot.groups, admin: false };
}

function userSummary(name: string, user: StoredUser): UserSummary {
  return { name, groups: user.groups, admin: user.admin, createdAt: user.createdAt };
}

function robotSummary(name: string, robot: StoredRobot, lastUsedAt: string | undefined): RobotSummary {
  return {
    username: `${ROBOT_PREFIX}${name}`,
    groups: robot.groups,
    expiresAt: robot.expiresAt,
    description: robot.description,
    createdAt: robot.createdAt,
    lastUsedAt,
  };
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name.localeCompare(b.name);
}
