import { runHostCommand } from '../support/host-command.js';

/**
 * iptables through its save/restore pair: one process reads a whole table and one applies a batch of
 * changes atomically, instead of a process per rule. Works with either iptables backend (nft or legacy),
 * whichever `iptables-restore` on PATH is, as docker's rules on the same host use the same one.
 */

export type Table = 'filter' | 'nat';

export interface TableState {
  chains: Set<string>;
  /** Each rule as iptables-save prints it: `-A CHAIN match... -j TARGET`. */
  rules: string[];
}

export async function readTable(table: Table): Promise<TableState> {
  const lines = (await runHostCommand('iptables-save', ['-t', table])).split('\n');
  return {
    chains: new Set(lines.filter((line) => line.startsWith(':')).map((line) => line.slice(1).split(' ')[0] ?? '')),
    rules: lines.filter((line) => line.startsWith('-A ')),
  };
}

/** Rules of `chain` in `state`, without their `-A CHAIN` prefix. */
export function rulesOf(state: TableState, chain: string): string[] {
  const prefix = `-A ${chain} `;
  return state.rules.filter((rule) => rule.startsWith(prefix)).map((rule) => rule.slice(prefix.length));
}

/**
 * Applies iptables commands written as in a restore file (`-N CHAIN`, `-A CHAIN spec`, `-D ...`, `-F`, `-X`),
 * all tables in one transaction. Nothing else in the tables is touched (--noflush).
 */
export async function changeTables(changes: Partial<Record<Table, string[]>>): Promise<void> {
  const script = Object.entries(changes)
    .filter(([, commands]) => commands.length > 0)
    .map(([table, commands]) => `*${table}\n${commands.join('\n')}\nCOMMIT\n`)
    .join('');
  if (script) await runHostCommand('iptables-restore', ['-w', '--noflush'], script);
}
