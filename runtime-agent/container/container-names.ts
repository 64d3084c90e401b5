import { randomInt } from 'node:crypto';

/** Docker-style `adjective_noun` names for containers run without --name. */

const ADJECTIVES = [
  'brave',
  'calm',
  'eager',
  'fervent',
  'gallant',
  'happy',
  'jolly',
  'keen',
  'lucid',
  'modest',
  'nifty',
  'quirky',
  'serene',
  'stoic',
  'tender',
  'vibrant',
  'wizardly',
  'zealous',
];
const NOUNS = [
  'anchor',
  'beacon',
  'capstan',
  'dinghy',
  'ferry',
  'galley',
  'harbor',
  'jetty',
  'keel',
  'lantern',
  'mooring',
  'pier',
  'quay',
  'rudder',
  'schooner',
  'tide',
  'wharf',
  'yawl',
];

export function generateName(taken: (name: string) => boolean): string {
  for (;;) {
    const name = `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${NOUNS[randomInt(NOUNS.length)]}`;
    if (!taken(name)) return name;
    const numbered = `${name}${randomInt(1000)}`;
    if (!taken(numbered)) return numbered;
  }
}
