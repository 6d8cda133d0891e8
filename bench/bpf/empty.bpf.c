// Empty programs, one per hook that krsi attaches to: the reference for
// `krsi bench progs` (the cost of a krsi program as a ratio to an empty
// program on the same hook, in the same boot). Keep in step with bpf/hooks.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("?lsm.s/bprm_check_security")
int BPF_PROG(es_bprm_check_security)
{
	return 0;
}

SEC("?lsm.s/bprm_committed_creds")
int BPF_PROG(es_bprm_committed_creds)
{
	return 0;
}

SEC("?lsm.s/kernel_read_file")
int BPF_PROG(es_kernel_read_file)
{
	return 0;
}

SEC("?lsm.s/mmap_file")
int BPF_PROG(es_mmap_file)
{
	return 0;
}

SEC("?lsm/bpf")
int BPF_PROG(e_bpf)
{
	return 0;
}

SEC("?lsm/bpf_map")
int BPF_PROG(e_bpf_map)
{
	return 0;
}

SEC("?lsm/bpf_prog")
int BPF_PROG(e_bpf_prog)
{
	return 0;
}

SEC("?lsm/bprm_check_security")
int BPF_PROG(e_bprm_check_security)
{
	return 0;
}

SEC("?lsm/bprm_committed_creds")
int BPF_PROG(e_bprm_committed_creds)
{
	return 0;
}

SEC("?lsm/file_mprotect")
int BPF_PROG(e_file_mprotect)
{
	return 0;
}

SEC("?lsm/file_open")
int BPF_PROG(e_file_open)
{
	return 0;
}

SEC("?lsm/inode_rename")
int BPF_PROG(e_inode_rename)
{
	return 0;
}

SEC("?lsm/inode_rmdir")
int BPF_PROG(e_inode_rmdir)
{
	return 0;
}

SEC("?lsm/inode_unlink")
int BPF_PROG(e_inode_unlink)
{
	return 0;
}

SEC("?lsm/kernel_post_load_data")
int BPF_PROG(e_kernel_post_load_data)
{
	return 0;
}

SEC("?lsm/kernel_read_file")
int BPF_PROG(e_kernel_read_file)
{
	return 0;
}

SEC("?lsm/mmap_file")
int BPF_PROG(e_mmap_file)
{
	return 0;
}

SEC("?lsm/path_rename")
int BPF_PROG(e_path_rename)
{
	return 0;
}

SEC("?lsm/path_unlink")
int BPF_PROG(e_path_unlink)
{
	return 0;
}

SEC("?lsm/ptrace_access_check")
int BPF_PROG(e_ptrace_access_check)
{
	return 0;
}

SEC("?lsm/ptrace_traceme")
int BPF_PROG(e_ptrace_traceme)
{
	return 0;
}

SEC("?lsm/sb_kern_mount")
int BPF_PROG(e_sb_kern_mount)
{
	return 0;
}

SEC("?lsm/sb_mount")
int BPF_PROG(e_sb_mount)
{
	return 0;
}

SEC("?lsm/sb_umount")
int BPF_PROG(e_sb_umount)
{
	return 0;
}

SEC("?lsm/socket_connect")
int BPF_PROG(e_socket_connect)
{
	return 0;
}

SEC("?lsm/task_fix_setgid")
int BPF_PROG(e_task_fix_setgid)
{
	return 0;
}

SEC("?lsm/task_fix_setuid")
int BPF_PROG(e_task_fix_setuid)
{
	return 0;
}

SEC("?lsm/task_kill")
int BPF_PROG(e_task_kill)
{
	return 0;
}

SEC("?tp_btf/module_free")
int BPF_PROG(et_module_free)
{
	return 0;
}

SEC("?tp_btf/module_load")
int BPF_PROG(et_module_load)
{
	return 0;
}

SEC("?tp_btf/sched_process_exit")
int BPF_PROG(et_sched_process_exit)
{
	return 0;
}

SEC("?tp_btf/sched_process_fork")
int BPF_PROG(et_sched_process_fork)
{
	return 0;
}
