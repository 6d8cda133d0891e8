// SPDX-License-Identifier: GPL-2.0
/*
 * Module init, libbpf's log, errors, feature probes.
 *
 * libbpf has one process-wide print hook.  It is installed once; it appends
 * each line to a thread-local capture (so the error thrown by the current
 * binding call can carry what libbpf said) and forwards it to the JS logger
 * of the environment running on this thread.  libbpf only prints from
 * inside our calls, and our calls only run on the JS thread of their
 * environment, so "this thread" always means "the caller's environment",
 * main thread and workers alike.
 */
#include "common.h"

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace krsi {

const napi_type_tag kObjectTag = {0x6b72736900000001ULL, 0x9f1c5b3a7d2e4a01ULL};
const napi_type_tag kProgramTag = {0x6b72736900000002ULL, 0x9f1c5b3a7d2e4a02ULL};
const napi_type_tag kMapTag = {0x6b72736900000003ULL, 0x9f1c5b3a7d2e4a03ULL};
const napi_type_tag kLinkTag = {0x6b72736900000004ULL, 0x9f1c5b3a7d2e4a04ULL};
const napi_type_tag kRingBufferTag = {0x6b72736900000005ULL, 0x9f1c5b3a7d2e4a05ULL};
const napi_type_tag kPerfBufferTag = {0x6b72736900000006ULL, 0x9f1c5b3a7d2e4a06ULL};

/* libbpf prints the verifier log in one line; bound what we keep of it. */
static constexpr size_t kCaptureMax = 16u << 20;

namespace {

struct Capture {
	int depth = 0;		/* LibbpfCall nesting */
	int finalizers = 0;	/* FinalizerScope nesting */
	bool forwarding = false; /* inside the JS logger */
	std::string log;	/* warn and info lines */
	std::string warnings;	/* warn lines only */
};

thread_local Capture tls_capture;
thread_local AddonData *tls_addon = nullptr;

char construct_token;

void Append(std::string *to, const std::string &line)
{
	if (to->size() + line.size() > kCaptureMax)
		return;
	to->append(line);
}

const char *LevelName(enum libbpf_print_level level)
{
	switch (level) {
	case LIBBPF_WARN:
		return "warn";
	case LIBBPF_INFO:
		return "info";
	default:
		return "debug";
	}
}

/* Hands one line to the JS logger; its exceptions must not leak into ours. */
void Forward(enum libbpf_print_level level, const std::string &line)
{
	Capture &c = tls_capture;
	AddonData *data = tls_addon;

	if (!data || data->logger.IsEmpty() || c.finalizers > 0 || c.forwarding)
		return;
	Napi::Env env(data->env);
	if (env.IsExceptionPending())
		return;

	std::string msg = line;
	static const char prefix[] = "libbpf: ";
	if (msg.compare(0, sizeof(prefix) - 1, prefix) == 0)
		msg.erase(0, sizeof(prefix) - 1);
	while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' '))
		msg.pop_back();

	Napi::HandleScope scope(env);
	c.forwarding = true;
	data->logger.Call({Napi::String::New(env, LevelName(level)), Napi::String::New(env, msg)});
	c.forwarding = false;
	if (env.IsExceptionPending())
		env.GetAndClearPendingException();
}

int OnLibbpfPrint(enum libbpf_print_level level, const char *fmt, va_list args)
{
	char small[512];
	std::string line;
	va_list copy;

	va_copy(copy, args);
	int n = vsnprintf(small, sizeof(small), fmt, copy);
	va_end(copy);
	if (n < 0)
		return 0;
	if (static_cast<size_t>(n) < sizeof(small)) {
		line.assign(small, n);
	} else {
		line.resize(n + 1);
		vsnprintf(&line[0], n + 1, fmt, args);
		line.resize(n);
	}

	Capture &c = tls_capture;
	if (c.depth > 0 && level != LIBBPF_DEBUG) {
		Append(&c.log, line);
		if (level == LIBBPF_WARN)
			Append(&c.warnings, line);
	}
	Forward(level, line);
	return 0;
}

std::string ErrnoCode(int err)
{
	char buf[64];

	/* Kernel-internal, but BPF syscalls do return it (e.g. map batch ops). */
	if (err == 524)
		return "ENOTSUPP";
	uv_err_name_r(-err, buf, sizeof(buf));
	if (strncmp(buf, "Unknown", 7) == 0)
		return "UNKNOWN";
	return buf;
}

std::string ErrnoMessage(int err)
{
	char buf[128];

	if (err == 524)
		return "Operation not supported by this kernel (ENOTSUPP)";
	/* GNU strerror_r returns the message, possibly not in buf. */
	return strerror_r(err, buf, sizeof(buf));
}

std::string TrimTrailing(std::string s)
{
	while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
		s.pop_back();
	return s;
}

} /* namespace */

LibbpfCall::LibbpfCall()
{
	if (tls_capture.depth++ == 0) {
		tls_capture.log.clear();
		tls_capture.warnings.clear();
	}
}

LibbpfCall::~LibbpfCall()
{
	tls_capture.depth--;
}

FinalizerScope::FinalizerScope()
{
	tls_capture.finalizers++;
}

FinalizerScope::~FinalizerScope()
{
	tls_capture.finalizers--;
}

AddonData *GetAddonData(Napi::Env env)
{
	return env.GetInstanceData<AddonData>();
}

Napi::Value ConstructToken(Napi::Env env)
{
	return Napi::External<char>::New(env, &construct_token);
}

bool IsConstructToken(const Napi::Value &v)
{
	return v.IsExternal() && v.As<Napi::External<char>>().Data() == &construct_token;
}

Napi::Value MakeErrno(Napi::Env env, const char *op, int err, const std::string &what)
{
	return MakeErrnoWithLog(env, op, err, what, false);
}

Napi::Value MakeErrnoWithLog(Napi::Env env, const char *op, int err, const std::string &what,
			     bool with_log)
{
	if (err < 0)
		err = -err;
	if (err == 0)
		err = EINVAL;	/* a failure without errno: do not report success */

	/* Outside a LibbpfCall the capture belongs to some earlier call. */
	bool captured = tls_capture.depth > 0;
	std::string code = ErrnoCode(err);
	std::string msg = op;
	if (!what.empty())
		msg += " " + what;
	msg += ": " + ErrnoMessage(err) + " (" + code + ")";
	std::string warnings = captured ? TrimTrailing(tls_capture.warnings) : "";
	if (with_log && !warnings.empty())
		msg += "\n" + warnings;

	Napi::Object e = Napi::Error::New(env, msg).Value();
	e.Set("code", Napi::String::New(env, code));
	e.Set("errno", Napi::Number::New(env, err));
	e.Set("op", Napi::String::New(env, op));
	e.Set("libbpfLog", Napi::String::New(env, captured ? tls_capture.log : ""));
	return e;
}

void ThrowErrno(Napi::Env env, const char *op, int err, const std::string &what, bool with_log)
{
	Napi::Value e = MakeErrnoWithLog(env, op, err, what, with_log);
	Napi::Error(env, e).ThrowAsJavaScriptException();
}

void ThrowError(Napi::Env env, const std::string &msg)
{
	Napi::Error::New(env, msg).ThrowAsJavaScriptException();
}

void ThrowClosed(Napi::Env env, const char *noun)
{
	Napi::Error e = Napi::Error::New(env, std::string(noun) + " is closed");
	e.Set("code", Napi::String::New(env, "ERR_KRSI_CLOSED"));
	e.ThrowAsJavaScriptException();
}

void ThrowTypeError(Napi::Env env, const std::string &msg)
{
	Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
}

bool GetBytes(const Napi::Value &v, const char *what, uint8_t **data, size_t *len)
{
	if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
		Napi::Uint8Array a = v.As<Napi::Uint8Array>();
		*data = a.Data();
		*len = a.ByteLength();
		return true;
	}
	ThrowTypeError(v.Env(), std::string(what) + " must be a Uint8Array or Buffer");
	return false;
}

bool GetOptionalUint(const Napi::Value &v, const char *what, uint64_t dflt, uint64_t *out)
{
	if (v.IsUndefined()) {
		*out = dflt;
		return true;
	}
	if (v.IsNumber()) {
		double d = v.As<Napi::Number>().DoubleValue();
		if (d >= 0 && d <= 9007199254740991.0 && d == static_cast<double>(static_cast<uint64_t>(d))) {
			*out = static_cast<uint64_t>(d);
			return true;
		}
	}
	ThrowTypeError(v.Env(), std::string(what) + " must be a non-negative integer");
	return false;
}

bool GetString(const Napi::Value &v, const char *what, std::string *out)
{
	if (!v.IsString()) {
		ThrowTypeError(v.Env(), std::string(what) + " must be a string");
		return false;
	}
	*out = v.As<Napi::String>().Utf8Value();
	return true;
}

std::string ProgTypeName(enum bpf_prog_type type)
{
	const char *s = libbpf_bpf_prog_type_str(type);
	return s ? s : "unknown(" + std::to_string(type) + ")";
}

std::string AttachTypeName(enum bpf_attach_type type)
{
	const char *s = libbpf_bpf_attach_type_str(type);
	return s ? s : "unknown(" + std::to_string(type) + ")";
}

std::string MapTypeName(enum bpf_map_type type)
{
	const char *s = libbpf_bpf_map_type_str(type);
	return s ? s : "unknown(" + std::to_string(type) + ")";
}

std::string LinkTypeName(enum bpf_link_type type)
{
	const char *s = libbpf_bpf_link_type_str(type);
	return s ? s : "unknown(" + std::to_string(type) + ")";
}

bool IsPerCpuMapType(enum bpf_map_type type)
{
	switch (type) {
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
	case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
		return true;
	default:
		return false;
	}
}

size_t PerCpuValueSize(size_t value_size)
{
	int cpus = libbpf_num_possible_cpus();

	return ((value_size + 7) & ~static_cast<size_t>(7)) * (cpus > 0 ? cpus : 1);
}

/* Enum values by libbpf's own names, so JS speaks libbpf's vocabulary. */
static constexpr int kEnumScanMax = 256;

bool MapTypeByName(Napi::Env env, const Napi::Value &v, enum bpf_map_type *out)
{
	std::string name;

	if (!GetString(v, "map type", &name))
		return false;
	for (int t = 0; t < kEnumScanMax; t++) {
		const char *s = libbpf_bpf_map_type_str(static_cast<enum bpf_map_type>(t));
		if (s && name == s) {
			*out = static_cast<enum bpf_map_type>(t);
			return true;
		}
	}
	ThrowTypeError(env, "unknown map type '" + name + "' (libbpf " +
			       libbpf_version_string() + ")");
	return false;
}

namespace {

bool ProgTypeByName(Napi::Env env, const Napi::Value &v, enum bpf_prog_type *out)
{
	std::string name;

	if (!GetString(v, "program type", &name))
		return false;
	for (int t = 0; t < kEnumScanMax; t++) {
		const char *s = libbpf_bpf_prog_type_str(static_cast<enum bpf_prog_type>(t));
		if (s && name == s) {
			*out = static_cast<enum bpf_prog_type>(t);
			return true;
		}
	}
	ThrowTypeError(env, "unknown program type '" + name + "' (libbpf " +
			       libbpf_version_string() + ")");
	return false;
}

Napi::Value LibbpfVersion(const Napi::CallbackInfo &info)
{
	std::string v = std::to_string(libbpf_major_version()) + "." +
			std::to_string(libbpf_minor_version());
	return Napi::String::New(info.Env(), v);
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo &info)
{
	LibbpfCall call;
	int n = libbpf_num_possible_cpus();

	if (n < 0) {
		ThrowErrno(info.Env(), "libbpf_num_possible_cpus", n, "");
		return info.Env().Undefined();
	}
	return Napi::Number::New(info.Env(), n);
}

Napi::Value SetLogger(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	AddonData *data = GetAddonData(env);

	if (info[0].IsNull() || info[0].IsUndefined()) {
		data->logger.Reset();
	} else if (info[0].IsFunction()) {
		data->logger = Napi::Persistent(info[0].As<Napi::Function>());
	} else {
		ThrowTypeError(env, "logger must be a function or null");
	}
	return env.Undefined();
}

/* libbpf_probe_*: 1 supported, 0 not, <0 the probe itself failed. */
Napi::Value ProbeResult(Napi::Env env, const char *op, int ret, const std::string &what)
{
	if (ret < 0) {
		ThrowErrno(env, op, ret, what);
		return env.Undefined();
	}
	return Napi::Boolean::New(env, ret > 0);
}

Napi::Value ProbeProgType(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	enum bpf_prog_type type;
	LibbpfCall call;

	if (!ProgTypeByName(env, info[0], &type))
		return env.Undefined();
	return ProbeResult(env, "libbpf_probe_bpf_prog_type",
			   libbpf_probe_bpf_prog_type(type, nullptr), ProgTypeName(type));
}

Napi::Value ProbeMapType(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	enum bpf_map_type type;
	LibbpfCall call;

	if (!MapTypeByName(env, info[0], &type))
		return env.Undefined();
	return ProbeResult(env, "libbpf_probe_bpf_map_type",
			   libbpf_probe_bpf_map_type(type, nullptr), MapTypeName(type));
}

Napi::Value ProbeHelper(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	enum bpf_prog_type type;
	uint64_t helper;
	LibbpfCall call;

	if (!ProgTypeByName(env, info[0], &type))
		return env.Undefined();
	if (!GetOptionalUint(info[1], "helper", UINT64_MAX, &helper))
		return env.Undefined();
	if (helper > INT32_MAX) {
		ThrowTypeError(env, "helper must be a helper id (enum bpf_func_id)");
		return env.Undefined();
	}
	return ProbeResult(env, "libbpf_probe_bpf_helper",
			   libbpf_probe_bpf_helper(type, static_cast<enum bpf_func_id>(helper), nullptr),
			   ProgTypeName(type) + " helper " + std::to_string(helper));
}

void FreeAddonData(Napi::Env, AddonData *data)
{
	if (tls_addon == data)
		tls_addon = nullptr;
	delete data;
}

Napi::Object Init(Napi::Env env, Napi::Object exports)
{
	static std::once_flag print_once;
	std::call_once(print_once, [] { libbpf_set_print(OnLibbpfPrint); });

	AddonData *data = new AddonData();
	data->env = env;
	env.SetInstanceData<AddonData, FreeAddonData>(data);
	tls_addon = data;

	exports.Set("libbpfVersion", Napi::Function::New(env, LibbpfVersion, "libbpfVersion"));
	exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus, "numPossibleCpus"));
	exports.Set("setLogger", Napi::Function::New(env, SetLogger, "setLogger"));
	exports.Set("probeProgType", Napi::Function::New(env, ProbeProgType, "probeProgType"));
	exports.Set("probeMapType", Napi::Function::New(env, ProbeMapType, "probeMapType"));
	exports.Set("probeHelper", Napi::Function::New(env, ProbeHelper, "probeHelper"));
	exports.Set("BpfObject", DefineBpfObject(env));
	exports.Set("BpfProgram", DefineBpfProgram(env));
	exports.Set("BpfMap", DefineBpfMap(env));
	exports.Set("BpfLink", DefineBpfLink(env));
	exports.Set("RingBuffer", DefineRingBuffer(env));
	exports.Set("PerfBuffer", DefinePerfBuffer(env));
	DefineSystemFunctions(env, exports);
	return exports;
}

} /* namespace */

} /* namespace krsi */

static Napi::Object InitModule(Napi::Env env, Napi::Object exports)
{
	return krsi::Init(env, exports);
}

NODE_API_MODULE(krsi_native, InitModule)
