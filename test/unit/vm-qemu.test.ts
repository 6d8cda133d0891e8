// The accelerator choice and the qemu command line.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseAccel, cpuinfoHasVirtualization, parseAccelRequest, qemuArguments, qemuOptionValue, type QemuLaunch } from '../../src/vm/qemu.js';

test('auto takes KVM only when /dev/kvm opens and the CPU has vmx or svm', () => {
  assert.equal(chooseAccel('auto', { kvmOpenable: true, cpuHasVirtualization: true }), 'kvm');
  // The development machines: /dev/kvm exists, no vmx/svm; KVM aborts there.
  assert.equal(chooseAccel('auto', { kvmOpenable: true, cpuHasVirtualization: false }), 'tcg');
  assert.equal(chooseAccel('auto', { kvmOpenable: false, cpuHasVirtualization: true }), 'tcg');
  assert.equal(chooseAccel('auto', { kvmOpenable: false, cpuHasVirtualization: false }), 'tcg');
});

test('an explicit choice is obeyed', () => {
  assert.equal(chooseAccel('kvm', { kvmOpenable: false, cpuHasVirtualization: false }), 'kvm');
  assert.equal(chooseAccel('tcg', { kvmOpenable: true, cpuHasVirtualization: true }), 'tcg');
  assert.equal(parseAccelRequest('tcg'), 'tcg');
  assert.throws(() => parseAccelRequest('hvf'), /unknown accelerator/);
});

test('vmx and svm are found among the flags only', () => {
  assert.equal(cpuinfoHasVirtualization('processor\t: 0\nflags\t\t: fpu vme de pse tsc msr vmx sse\n'), true);
  assert.equal(cpuinfoHasVirtualization('flags\t\t: fpu svm lm\n'), true);
  assert.equal(cpuinfoHasVirtualization('flags\t\t: fpu vme de pse tsc msr sse\nvmx flags\t: ept\n'), false);
  assert.equal(cpuinfoHasVirtualization('flags\t\t: fpu vmxsomething\n'), false);
});

const launch = (accel: 'kvm' | 'tcg'): QemuLaunch => ({
  accel,
  kernel: {
    series: '6.1',
    packageName: 'linux-image-6.1.0-56-amd64',
    version: '6.1.0-56-amd64',
    vmlinuz: '/cache/boot/vmlinuz-6.1.0-56-amd64',
    bootImage: '/cache/boot/vmlinux-6.1.0-56-amd64',
    modulesDir: '/cache/lib/modules/6.1.0-56-amd64',
    cmdline: [],
  },
  initramfs: '/cache/initramfs/x.cpio',
  runDir: '/tmp/krsi-vm-abc',
  memoryMib: 1024,
  cpus: 3,
  writableShares: [{ tag: 'krsiw0', path: '/work/out,dir' }],
});

function optionValues(args: readonly string[], option: string): string[] {
  return args.flatMap((a, i) => (a === option && args[i + 1] !== undefined ? [args[i + 1] as string] : []));
}

test('the command line: CPU per accelerator, shares, serial ports, boot image', () => {
  const tcg = qemuArguments(launch('tcg'));
  assert.deepEqual(optionValues(tcg, '-cpu'), ['max']);
  assert.deepEqual(optionValues(tcg, '-accel'), ['tcg,thread=single']);
  assert.deepEqual(optionValues(qemuArguments(launch('kvm')), '-cpu'), ['host']);
  assert.deepEqual(optionValues(tcg, '-smp'), ['3']);
  assert.deepEqual(optionValues(tcg, '-m'), ['1024']);
  assert.deepEqual(optionValues(tcg, '-kernel'), ['/cache/boot/vmlinux-6.1.0-56-amd64']);
  assert.ok(tcg.includes('-no-reboot'));
  assert.deepEqual(optionValues(tcg, '-virtfs'), [
    'local,path=/,mount_tag=hostroot,security_model=none,multidevs=remap,readonly=on',
    'local,path=/tmp/krsi-vm-abc,mount_tag=krsirun,security_model=none,multidevs=remap',
    'local,path=/work/out,,dir,mount_tag=krsiw0,security_model=none,multidevs=remap',
  ]);
  assert.deepEqual(optionValues(tcg, '-serial'), ['chardev:guest-stdout', 'chardev:guest-stderr']);
  assert.deepEqual(optionValues(tcg, '-chardev'), ['socket,id=guest-stdout,fd=3', 'socket,id=guest-stderr,fd=4']);
  const append = optionValues(tcg, '-append')[0] ?? '';
  assert.match(append, /console=ttyS1/);
  assert.match(append, /panic=-1/);
  assert.doesNotMatch(append, /lsm=/);
});

test('the kernel\'s own command-line words (lsm=…,bpf on 5.10) follow the defaults', () => {
  const l = launch('tcg');
  const args = qemuArguments({ ...l, kernel: { ...l.kernel, cmdline: ['lsm=lockdown,yama,bpf'] } });
  assert.match(optionValues(args, '-append')[0] ?? '', /panic=-1 lsm=lockdown,yama,bpf$/);
});

test('commas in qemu option values are doubled', () => {
  assert.equal(qemuOptionValue('/a,b,,c'), '/a,,b,,,,c');
});
