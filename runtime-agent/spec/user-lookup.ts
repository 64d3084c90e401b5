import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { resolveInRoot } from '../unpack/rooted-path.js';
import { RunOptionsError } from '../container/run-options.js';

/**
 * `user[:group]` resolved against the container's own /etc/passwd and /etc/group, exactly as docker does it
 * (runc's libcontainer/user GetExecUser, then docker's primary-gid-first group list).
 */

/** A user or group name the image does not know, or an id out of range. */
export class UserLookupError extends RunOptionsError {}

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** The primary gid first, then the groups that list the user by name (only when no group was given). */
  additionalGids: number[];
  /** From the passwd entry; `/` when the uid has none (what runc sets HOME to). */
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const MAX_ID = 2 ** 31 - 1;

/** Reads the rootfs's /etc/passwd and /etc/group without leaving it, then resolves `spec` (undefined or '' is root). */
export function resolveUser(rootfs: string, spec: string | undefined): Promise<ResolvedUser> {
  return resolveUserWith((file) => resolveInRoot(rootfs, file), spec);
}

/** The same, the files found by `hostPathOf` (a path in the container to where it is on the host; undefined when absent). */
export async function resolveUserWith(
  hostPathOf: (file: string) => Promise<string | undefined>,
  spec: string | undefined,
): Promise<ResolvedUser> {
  const [passwd, group] = await Promise.all(['/etc/passwd', '/etc/group'].map(async (file) => readRegularFile(await hostPathOf(file))));
  return resolveUserSpec(spec ?? '', passwd, group);
}

/** The resolution itself, on the files' contents (undefined when a file is absent, as runc treats it). */
export function resolveUserSpec(spec: string, passwd: string | undefined, group: string | undefined): ResolvedUser {
  // Like runc, only the first two colon-separated fields count: `app:x:y` is user app, group x.
  const [userArg = '', groupArg = ''] = spec.split(':');
  const uidArg = numericId(userArg);
  const user = parsePasswd(passwd).find((entry) =>
    userArg === '' ? entry.uid === 0 : uidArg !== undefined ? entry.uid === uidArg : entry.name === userArg,
  );
  let uid = user?.uid ?? 0;
  let gid = user?.gid ?? 0;
  if (!user && userArg !== '') {
    if (uidArg === undefined) throw new UserLookupError(`unable to find user ${userArg}: no matching entries in passwd file`);
    uid = checkRange(uidArg);
  }
  let supplementary: number[] = [];
  if (groupArg !== '') {
    gid = explicitGroup(groupArg, parseGroup(group));
  } else if (user?.name) {
    supplementary = parseGroup(group)
      .filter((entry) => entry.members.includes(user.name))
      .map((entry) => entry.gid);
  }
  return { uid, gid, additionalGids: [gid, ...supplementary], home: user?.home || '/' };
}

function explicitGroup(groupArg: string, groups: GroupEntry[]): number {
  const gidArg = numericId(groupArg);
  const match = groups.find((entry) => (gidArg !== undefined ? entry.gid === gidArg : entry.name === groupArg));
  if (match) return match.gid;
  if (gidArg === undefined) throw new UserLookupError(`unable to find group ${groupArg}: no matching entries in group file`);
  return checkRange(gidArg);
}

/** A number as Go's strconv.Atoi reads one (sign allowed), else undefined: the argument is a name. */
function numericId(text: string): number | undefined {
  return /^[+-]?\d+$/.test(text) ? Number(text) : undefined;
}

function checkRange(id: number): number {
  if (id < 0 || id > MAX_ID) throw new UserLookupError(`uids and gids must be in range 0-${MAX_ID}`);
  return id;
}

/** name:password:UID:GID:GECOS:directory:shell; unparsable numbers read as 0, as runc reads them. */
function parsePasswd(text: string | undefined): PasswdEntry[] {
  return lines(text, true).map((fields) => ({ name: fields[0] ?? '', uid: atoi(fields[2]), gid: atoi(fields[3]), home: fields[5] ?? '' }));
}

/** group_name:password:GID:user_list. */
function parseGroup(text: string | undefined): GroupEntry[] {
  return lines(text, false).map((fields) => ({
    name: fields[0] ?? '',
    gid: atoi(fields[2]),
    members: fields[3] ? fields[3].split(',') : [],
  }));
}

/** runc trims passwd lines but not group lines; both skip empty ones. */
function lines(text: string | undefined, trim: boolean): string[][] {
  return (text ?? '')
    .split('\n')
    .map((line) => (trim ? line.trim() : line))
    .filter((line) => line !== '')
    .map((line) => line.split(':'));
}

function atoi(field: string | undefined): number {
  return numericId(field ?? '') ?? 0;
}

/**
 * A file of the container, its path resolved inside the container's root (symlinks never followed by the
 * kernel); a missing or non-regular file (a FIFO would block the agent) reads as absent.
 */
async function readRegularFile(hostPath: string | undefined): Promise<string | undefined> {
  if (hostPath === undefined) return undefined;
  const handle = await open(hostPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR' || error.code === 'ELOOP') return undefined;
      throw error;
    },
  );
  if (!handle) return undefined;
  try {
    return (await handle.stat()).isFile() ? await handle.readFile('utf8') : undefined;
  } finally {
    await handle.close();
  }
}
