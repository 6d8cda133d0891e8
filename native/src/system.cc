// SPDX-License-Identifier: GPL-2.0
/*
 * Plain syscalls the agent needs next to libbpf, which Node does not offer:
 *
 *  - pidfd_open(2), for the keys of task_storage maps: user space names a
 *    task by a pidfd (an int key), never by its pid;
 *  - close(2) of such an fd;
 *  - SO_PEERCRED, the pid, uid and gid of the process at the other end of
 *    a Unix socket, as the kernel recorded them at connect() (or
 *    socketpair()) time;
 *  - Landlock, with which the agent confines itself: read everywhere (it
 *    hashes binaries, reads /proc), write only where it keeps its state,
 *    execute nothing.
 *
 * Numbers in, numbers out; errors are the usual NativeErrors with the
 * syscall's name as op.  Nothing here goes through libbpf.
 */
#include "common.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <string>
#include <utility>
#include <vector>

/* Debian 12's headers know it; the number is the same on every arch but alpha. */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace krsi {

namespace {

/* An fd or a pid: an integer from min to INT_MAX, or a TypeError. */
bool GetInt(const Napi::Value &v, const char *what, uint64_t min, int *out)
{
	uint64_t n;

	if (!GetOptionalUint(v, what, UINT64_MAX, &n))
		return false;
	if (n < min || n > INT_MAX) {
		ThrowTypeError(v.Env(), std::string(what) + " must be an integer from " + std::to_string(min) +
						" to " + std::to_string(INT_MAX));
		return false;
	}
	*out = static_cast<int>(n);
	return true;
}

/*
 * The fd is close-on-exec (pidfds always are).  A pid that has exited and
 * been reaped gives ESRCH; a zombie still gets a pidfd.
 */
Napi::Value PidfdOpen(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	int pid;

	if (!GetInt(info[0], "pid", 1, &pid))
		return env.Undefined();
	long fd = syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0) {
		ThrowErrno(env, "pidfd_open", errno, "pid " + std::to_string(pid));
		return env.Undefined();
	}
	return Napi::Number::New(env, static_cast<double>(fd));
}

/* Linux closes the fd even when close() says EINTR: that is success here. */
Napi::Value CloseFd(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	int fd;

	if (!GetInt(info[0], "fd", 0, &fd))
		return env.Undefined();
	if (close(fd) && errno != EINTR)
		ThrowErrno(env, "close", errno, "fd " + std::to_string(fd));
	return env.Undefined();
}

/*
 * Only Unix sockets carry credentials: other sockets answer SO_PEERCRED with
 * pid 0 and the overflow ids, so they are refused instead (a TypeError), as
 * is a Unix socket with no peer yet (ENOTCONN).
 */
Napi::Value PeerCredentials(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	struct ucred cred = {};
	socklen_t len = sizeof(cred);
	int fd, domain = 0;
	socklen_t dlen = sizeof(domain);

	if (!GetInt(info[0], "fd", 0, &fd))
		return env.Undefined();
	std::string what = "fd " + std::to_string(fd);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen)) {
		ThrowErrno(env, "getsockopt", errno, what + " (SO_DOMAIN)");
		return env.Undefined();
	}
	if (domain != AF_UNIX) {
		ThrowTypeError(env, "peerCredentials: " + what + " is not a Unix socket (address family " +
					    std::to_string(domain) + ")");
		return env.Undefined();
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
		ThrowErrno(env, "getsockopt", errno, what + " (SO_PEERCRED)");
		return env.Undefined();
	}
	if (cred.pid == 0) {
		ThrowErrno(env, "getsockopt", ENOTCONN, what + " (SO_PEERCRED: no peer)");
		return env.Undefined();
	}
	Napi::Object out = Napi::Object::New(env);
	out.Set("pid", Napi::Number::New(env, cred.pid));
	out.Set("uid", Napi::Number::New(env, cred.uid));
	out.Set("gid", Napi::Number::New(env, cred.gid));
	return out;
}

} /* namespace */

/* Debian 12's libc has no wrappers; the syscall numbers are fixed (5.13+). */
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

/* Rights a Landlock ABI version can restrict (v2 adds REFER, v3 TRUNCATE). */
static uint64_t LandlockRights(int abi)
{
	uint64_t rights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
			  LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
			  LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
			  LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
			  LANDLOCK_ACCESS_FS_MAKE_SYM;
	if (abi >= 2)
		rights |= 1ULL << 13; /* LANDLOCK_ACCESS_FS_REFER */
	if (abi >= 3)
		rights |= 1ULL << 14; /* LANDLOCK_ACCESS_FS_TRUNCATE */
	return rights;
}

/*
 * landlockRestrict({ read, write, exec }: paths) → { abi }.  Confines
 * this process (every thread: Node's are started by now, and
 * landlock_restrict_self applies to the calling thread only, so the caller
 * must be the only thread that matters — see the TypeScript side) to reading
 * under `read`, reading and writing under `write`, and executing only the
 * files in `exec`.  Irreversible.
 */
static Napi::Value LandlockRestrict(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();

	if (!info[0].IsObject()) {
		ThrowTypeError(env, "landlockRestrict takes { read: string[], write: string[], exec: string[] }");
		return env.Undefined();
	}
	Napi::Object opts = info[0].As<Napi::Object>();
	long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0) {
		ThrowErrno(env, "landlock_create_ruleset", errno, "version");
		return env.Undefined();
	}
	uint64_t handled = LandlockRights(static_cast<int>(abi));
	struct landlock_ruleset_attr attr = {};
	attr.handled_access_fs = handled;
	int ruleset = static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0));
	if (ruleset < 0) {
		ThrowErrno(env, "landlock_create_ruleset", errno, "");
		return env.Undefined();
	}
	const uint64_t read = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
	const uint64_t write = handled & ~static_cast<uint64_t>(LANDLOCK_ACCESS_FS_EXECUTE);
	const uint64_t exec = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_EXECUTE;
	for (const char *key : { "read", "write", "exec" }) {
		Napi::Value list = opts.Get(key);
		if (!list.IsArray()) {
			close(ruleset);
			ThrowTypeError(env, std::string(key) + " must be an array of paths");
			return env.Undefined();
		}
		Napi::Array paths = list.As<Napi::Array>();
		for (uint32_t i = 0; i < paths.Length(); i++) {
			std::string path;
			if (!GetString(paths.Get(i), key, &path)) {
				close(ruleset);
				return env.Undefined();
			}
			int fd = open(path.c_str(), O_PATH | O_CLOEXEC);
			if (fd < 0) {
				int e = errno;
				close(ruleset);
				ThrowErrno(env, "open", e, path);
				return env.Undefined();
			}
			struct landlock_path_beneath_attr rule = {};
			rule.parent_fd = fd;
			/* A file may only carry file rights, a directory all. */
			uint64_t rights = std::string(key) == "read" ? read : std::string(key) == "write" ? write : exec;
			struct stat st;
			if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
				rights &= LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
					  (1ULL << 14) /* TRUNCATE */;
			rule.allowed_access = rights & handled;
			long err = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
			int e = errno;
			close(fd);
			if (err < 0) {
				close(ruleset);
				ThrowErrno(env, "landlock_add_rule", e, path);
				return env.Undefined();
			}
		}
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_landlock_restrict_self, ruleset, 0) < 0) {
		int e = errno;
		close(ruleset);
		ThrowErrno(env, "landlock_restrict_self", e, "");
		return env.Undefined();
	}
	close(ruleset);
	Napi::Object out = Napi::Object::New(env);
	out.Set("abi", Napi::Number::New(env, static_cast<double>(abi)));
	return out;
}

/*
 * execve(path, argv, env): replaces this process, keeping its Landlock
 * domain, which then covers every thread the new image starts.  Returns
 * only on failure.
 */
static Napi::Value Execve(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	std::string path;
	std::vector<std::string> args, envs;

	if (!GetString(info[0], "path", &path))
		return env.Undefined();
	if (!info[1].IsArray() || !info[2].IsArray()) {
		ThrowTypeError(env, "execve takes (path, argv: string[], env: string[])");
		return env.Undefined();
	}
	for (auto [arr, out] : { std::pair{ info[1].As<Napi::Array>(), &args }, std::pair{ info[2].As<Napi::Array>(), &envs } }) {
		for (uint32_t i = 0; i < arr.Length(); i++) {
			std::string v;
			if (!GetString(arr.Get(i), "argv/env entry", &v))
				return env.Undefined();
			out->push_back(v);
		}
	}
	std::vector<char *> argv, envp;
	for (auto &a : args)
		argv.push_back(a.data());
	argv.push_back(nullptr);
	for (auto &e : envs)
		envp.push_back(e.data());
	envp.push_back(nullptr);
	/*
	 * Node marks the standard descriptors close-on-exec at start: the new
	 * image would find them closed (and Node would put /dev/null there).
	 */
	int flags[3];
	for (int fd = 0; fd < 3; fd++) {
		flags[fd] = fcntl(fd, F_GETFD);
		if (flags[fd] >= 0)
			fcntl(fd, F_SETFD, flags[fd] & ~FD_CLOEXEC);
	}
	execve(path.c_str(), argv.data(), envp.data());
	int err = errno;
	for (int fd = 0; fd < 3; fd++)
		if (flags[fd] >= 0)
			fcntl(fd, F_SETFD, flags[fd]);
	ThrowErrno(env, "execve", err, path);
	return env.Undefined();
}

void DefineSystemFunctions(Napi::Env env, Napi::Object exports)
{
	exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
	exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
	exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
	exports.Set("landlockRestrict", Napi::Function::New(env, LandlockRestrict, "landlockRestrict"));
	exports.Set("execve", Napi::Function::New(env, Execve, "execve"));
}

} /* namespace krsi */
