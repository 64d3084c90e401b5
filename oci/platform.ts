/** Which entry of an image index this host runs. */

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const GO_ARCHITECTURES: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
};

export function hostPlatform(): Platform {
  const architecture = GO_ARCHITECTURES[process.arch] ?? process.arch;
  if (architecture === 'arm64') return { os: 'linux', architecture, variant: 'v8' };
  if (architecture === 'arm') {
    const version = (process.config.variables as { arm_version?: string }).arm_version;
    return { os: 'linux', architecture, variant: version ? `v${version}` : 'v7' };
  }
  return { os: 'linux', architecture };
}

/** arm64 without a variant means v8, as containerd normalizes it. */
function normalizedVariant(platform: Platform): string | undefined {
  if (platform.architecture === 'arm64' && platform.variant === undefined) return 'v8';
  return platform.variant;
}

/**
 * Ranks a candidate for the wanted platform: undefined if it cannot run here, lower is better. An exact
 * variant beats an entry without a variant (a generic build), which beats any other variant.
 */
export function platformRank(candidate: Platform | undefined, wanted: Platform): number | undefined {
  if (!candidate || candidate.os !== wanted.os || candidate.architecture !== wanted.architecture) return undefined;
  const variant = normalizedVariant(candidate);
  const wantedVariant = normalizedVariant(wanted);
  if (variant === wantedVariant) return 0;
  if (variant === undefined) return 1;
  // amd64 microarchitecture levels: a v1 build runs anywhere, higher levels only if asked for.
  if (wanted.architecture === 'amd64' && wantedVariant === undefined && variant === 'v1') return 1;
  return undefined;
}

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

export function parsePlatform(text: string): Platform {
  const [os, architecture, variant] = text.split('/');
  if (!os || !architecture) throw new Error(`platform must be os/architecture[/variant], got ${JSON.stringify(text)}`);
  return variant ? { os, architecture, variant } : { os, architecture };
}
