// SPDX-License-Identifier: GPL-2.0
/*
 * Shared declarations of the krsi native binding.
 *
 * The binding is a thin, synchronous layer over libbpf: one C++ file per
 * libbpf noun (object, program, map, link, ring buffer, perf buffer), Buffers in and out,
 * typed decoding left to TypeScript.  Everything runs on the JS thread that
 * owns the environment, so nothing here is shared between threads except
 * libbpf's global print hook, which routes through thread-local state.
 *
 * Built with NAPI_DISABLE_CPP_EXCEPTIONS: a failing call throws into JS and
 * returns immediately; callers check env.IsExceptionPending() where a helper
 * may have thrown.
 */
#ifndef KRSI_NATIVE_COMMON_H
#define KRSI_NATIVE_COMMON_H

#include <napi.h>
#include <uv.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace krsi {

/* Per-environment state (main thread and every worker has its own). */
struct AddonData {
	Napi::FunctionReference object_ctor;
	Napi::FunctionReference program_ctor;
	Napi::FunctionReference map_ctor;
	Napi::FunctionReference link_ctor;
	Napi::FunctionReference logger;	/* (level, msg) => void, or empty */
	napi_env env = nullptr;
};

AddonData *GetAddonData(Napi::Env env);

/*
 * Wrappers are created from C++ only.  JS constructors check for this
 * token so that `new BpfProgram()` from script throws instead of making a
 * wrapper around nothing.
 */
Napi::Value ConstructToken(Napi::Env env);
bool IsConstructToken(const Napi::Value &v);

/* Type tags (Node-API 8): an unrelated object can never be unwrapped. */
extern const napi_type_tag kObjectTag;
extern const napi_type_tag kProgramTag;
extern const napi_type_tag kMapTag;
extern const napi_type_tag kLinkTag;
extern const napi_type_tag kRingBufferTag;
extern const napi_type_tag kPerfBufferTag;

/*
 * Scope of one binding call that may make libbpf print: lines printed while
 * it lives are captured (thread-locally) for errors thrown by the call.
 * Nested scopes (a JS logger calling back into the binding) share the
 * outermost capture.
 */
class LibbpfCall {
public:
	LibbpfCall();
	~LibbpfCall();
	LibbpfCall(const LibbpfCall &) = delete;
	LibbpfCall &operator=(const LibbpfCall &) = delete;
};

/*
 * Finalizers run outside any JS call: libbpf output there is not forwarded
 * to the JS logger.
 */
class FinalizerScope {
public:
	FinalizerScope();
	~FinalizerScope();
	FinalizerScope(const FinalizerScope &) = delete;
	FinalizerScope &operator=(const FinalizerScope &) = delete;
};

/*
 * Throws an Error carrying code ('ENOENT'), errno (positive), op (the
 * libbpf or syscall name) and libbpfLog (warn and info lines captured in
 * the current LibbpfCall).  err may be a negative or a positive errno.
 * what names the thing operated on; with_log appends the captured warnings
 * to the message, which is how the verifier log reaches a load error.
 */
void ThrowErrno(Napi::Env env, const char *op, int err, const std::string &what,
		bool with_log = true);

/* The same Error as a value, for errors reported later (ring buffer polling). */
Napi::Value MakeErrno(Napi::Env env, const char *op, int err, const std::string &what);
Napi::Value MakeErrnoWithLog(Napi::Env env, const char *op, int err, const std::string &what,
			     bool with_log);

/* Plain Error (bad state) and TypeError (bad argument). */
void ThrowError(Napi::Env env, const std::string &msg);
void ThrowTypeError(Napi::Env env, const std::string &msg);

/* "<noun> is closed", code 'ERR_KRSI_CLOSED': any use after close(). */
void ThrowClosed(Napi::Env env, const char *noun);

/* The bytes of a Uint8Array (Buffer included); throws a TypeError if not. */
bool GetBytes(const Napi::Value &v, const char *what, uint8_t **data, size_t *len);

/* An optional non-negative integer argument; throws a TypeError if invalid. */
bool GetOptionalUint(const Napi::Value &v, const char *what, uint64_t dflt, uint64_t *out);

/* A string argument; throws a TypeError if not a string. */
bool GetString(const Napi::Value &v, const char *what, std::string *out);

/* Checks the tag and unwraps; throws a TypeError naming `what` otherwise. */
template <typename T>
T *UnwrapTagged(const Napi::Value &v, const napi_type_tag *tag, const char *what)
{
	if (v.IsObject()) {
		Napi::Object obj = v.As<Napi::Object>();
		if (obj.CheckTypeTag(tag))
			return T::Unwrap(obj);
	}
	ThrowTypeError(v.Env(), std::string("expected a ") + what);
	return nullptr;
}

/* libbpf's names for kernel enums; "unknown(<n>)" past its tables. */
std::string ProgTypeName(enum bpf_prog_type type);
std::string AttachTypeName(enum bpf_attach_type type);
std::string MapTypeName(enum bpf_map_type type);
std::string LinkTypeName(enum bpf_link_type type);

/* The reverse of MapTypeName(); throws a TypeError for a name libbpf lacks. */
bool MapTypeByName(Napi::Env env, const Napi::Value &v, enum bpf_map_type *out);

/* Per-CPU map values: each CPU's slot is the value size rounded up to 8. */
bool IsPerCpuMapType(enum bpf_map_type type);
size_t PerCpuValueSize(size_t value_size);

/* Wrapper classes: each registers its constructor in AddonData. */
Napi::Function DefineBpfObject(Napi::Env env);
Napi::Function DefineBpfProgram(Napi::Env env);
Napi::Function DefineBpfMap(Napi::Env env);
Napi::Function DefineBpfLink(Napi::Env env);
Napi::Function DefineRingBuffer(Napi::Env env);
Napi::Function DefinePerfBuffer(Napi::Env env);

/* Plain functions over syscalls (system.cc): pidfds, peer credentials. */
void DefineSystemFunctions(Napi::Env env, Napi::Object exports);

class BpfObjectWrap;

/* Used by object.cc to hand out wrappers of what an object owns. */
Napi::Value NewProgramWrap(Napi::Env env, Napi::Object owner, struct bpf_program *prog);
Napi::Value NewMapWrap(Napi::Env env, Napi::Object owner, struct bpf_map *map);
Napi::Value NewLinkWrap(Napi::Env env, struct bpf_link *link);

/*
 * Program and map wrappers hold a strong reference to their BpfObject's JS
 * object, so the bpf_object outlives them; these ask whether it was closed.
 */
BpfObjectWrap *UnwrapObject(Napi::Object owner);
bool ObjectIsOpen(const BpfObjectWrap *obj);
/* True once load() was called, whether it succeeded or not. */
bool ObjectLoadAttempted(const BpfObjectWrap *obj);

/*
 * Map handles used by the ring and perf buffer readers (map.cc): the fd of
 * an open, created map of that type, or -1 and a throw naming `what`.
 */
int MapFdForReader(const Napi::Value &v, const std::string &what, enum bpf_map_type type);

} /* namespace krsi */

#endif /* KRSI_NATIVE_COMMON_H */
