import type { TerminalSize } from '../container/attach/terminal-frames.js';

/**
 * A `-t` container's terminal has its size before its process runs. runc 1.1 ignores `process.consoleSize`
 * and, under `runc run`, copies the size onto the container's new terminal only after the process has been
 * started, so a quick `stty size` could read 0 0. Its `poststart` hooks run earlier (once the container's
 * init has set up that terminal and waits to exec the process): this one sets the size on the terminal the
 * init holds as its stdin, found from the state runc passes on the hook's stdin. It runs on the host as
 * runc's child and touches nothing but that terminal; should it fail, runc's own copy still follows.
 */

export interface OciHook {
  path: string;
  args: string[];
  env: string[];
}

const SET_SIZE_SCRIPT =
  'pid=$(sed -n \'s/.*"pid": *\\([0-9][0-9]*\\).*/\\1/p\') && stty -F "/proc/$pid/fd/0" rows "$1" cols "$2" 2>/dev/null || :';

export function consoleSizeHook(size: TerminalSize): OciHook {
  return {
    path: '/bin/sh',
    args: ['sh', '-c', SET_SIZE_SCRIPT, 'berth-console-size', String(size.rows), String(size.columns)],
    env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
  };
}
