// SPDX-License-Identifier: GPL-2.0
/*
 * Plain syscalls the agent needs next to libbpf, which Node does not offer:
 *
 *  - pidfd_open(2), for the keys of task_storage maps: user space names a
 *    task by a pidfd (an int key), never by its pid;
 *  - close(2) of such an fd;
 *  - SO_PEERCRED, the pid, uid and gid of the process at the other end of
 *    a Unix socket, as the kernel recorded them at connect() (or
 *    socketpair()) time.
 *
 * Numbers in, numbers out; errors are the usual NativeErrors with the
 * syscall's name as op.  Nothing here goes through libbpf.
 */
#include "common.h"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

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

void DefineSystemFunctions(Napi::Env env, Napi::Object exports)
{
	exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
	exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
	exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
}

} /* namespace krsi */
