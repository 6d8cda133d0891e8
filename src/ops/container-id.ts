// Container ids from cgroup v2 paths, as container runtimes name them:
//   docker (systemd driver)     /system.slice/docker-<64 hex>.scope
//   docker (cgroupfs driver)    /docker/<64 hex>
//   containerd (CRI)            /kubepods.slice/.../cri-containerd-<64 hex>.scope, /kubepods/.../<64 hex>
//   cri-o                       /kubepods.slice/.../crio-<64 hex>.scope
//   podman                      /machine.slice/libpod-<64 hex>.scope, .../libpod-<64 hex>/container
// The runtime's own monitor (conmon: crio-conmon-*, libpod-conmon-*) is not a container.

const SCOPE = /^(docker|cri-containerd|crio|libpod)-([0-9a-f]{64})\.scope$/;
const BARE = /^([0-9a-f]{64})$/;

export interface ContainerRef {
  id: string;
  runtime: 'docker' | 'containerd' | 'cri-o' | 'podman' | 'unknown';
}

const RUNTIMES: Record<string, ContainerRef['runtime']> = { docker: 'docker', 'cri-containerd': 'containerd', crio: 'cri-o', libpod: 'podman' };

/** The innermost container a cgroup path belongs to, or null. */
export function containerFromCgroup(path: string): ContainerRef | null {
  const parts = path.split('/').filter(Boolean);
  for (let i = parts.length - 1; i >= 0; i--) {
    const part = parts[i]!;
    const scope = SCOPE.exec(part);
    if (scope) return { id: scope[2]!, runtime: RUNTIMES[scope[1]!] ?? 'unknown' };
    if (BARE.test(part)) {
      const parent = parts[i - 1] ?? '';
      const runtime = parent === 'docker' ? 'docker' : parent.startsWith('kubepods') || parent.startsWith('pod') ? 'containerd' : 'unknown';
      return { id: part, runtime };
    }
  }
  return null;
}
