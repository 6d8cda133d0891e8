// SPDX-License-Identifier: GPL-2.0
/*
 * BpfProgram: one struct bpf_program of an object.
 *
 * The bpf_program belongs to its bpf_object; the wrapper keeps the object's
 * JS object alive and checks it is still open before every use.
 */
#include "common.h"

#include <cerrno>
#include <cstring>

namespace krsi {

class BpfProgramWrap : public Napi::ObjectWrap<BpfProgramWrap> {
public:
	static Napi::Function Define(Napi::Env env);
	explicit BpfProgramWrap(const Napi::CallbackInfo &info);

	void Init(Napi::Object owner, struct bpf_program *prog);

private:
	bool CheckOpen(Napi::Env env) const;
	std::string Describe() const;
	/* The program's fd, or -1 after throwing: it is not loaded. */
	int LoadedFd(Napi::Env env, const char *op) const;
	bool Info(Napi::Env env, const char *what, struct bpf_prog_info *prog_info);

	Napi::Value GetName(const Napi::CallbackInfo &info);
	Napi::Value GetSection(const Napi::CallbackInfo &info);
	Napi::Value GetType(const Napi::CallbackInfo &info);
	Napi::Value GetAttachType(const Napi::CallbackInfo &info);
	Napi::Value GetSleepable(const Napi::CallbackInfo &info);
	Napi::Value GetAutoload(const Napi::CallbackInfo &info);
	void SetAutoload(const Napi::CallbackInfo &info, const Napi::Value &value);
	Napi::Value GetFd(const Napi::CallbackInfo &info);
	Napi::Value Attach(const Napi::CallbackInfo &info);
	Napi::Value RunStats(const Napi::CallbackInfo &info);
	Napi::Value Id(const Napi::CallbackInfo &info);

	Napi::ObjectReference owner_;
	BpfObjectWrap *owner_wrap_ = nullptr;
	struct bpf_program *prog_ = nullptr;
};

Napi::Function DefineBpfProgram(Napi::Env env)
{
	return BpfProgramWrap::Define(env);
}

Napi::Value NewProgramWrap(Napi::Env env, Napi::Object owner, struct bpf_program *prog)
{
	Napi::Object inst = GetAddonData(env)->program_ctor.New({ConstructToken(env)});
	if (env.IsExceptionPending())
		return env.Undefined();
	BpfProgramWrap::Unwrap(inst)->Init(owner, prog);
	return inst;
}

Napi::Function BpfProgramWrap::Define(Napi::Env env)
{
	Napi::Function ctor = DefineClass(env, "BpfProgram", {
		InstanceAccessor<&BpfProgramWrap::GetName>("name"),
		InstanceAccessor<&BpfProgramWrap::GetSection>("section"),
		InstanceAccessor<&BpfProgramWrap::GetType>("type"),
		InstanceAccessor<&BpfProgramWrap::GetAttachType>("attachType"),
		InstanceAccessor<&BpfProgramWrap::GetSleepable>("sleepable"),
		InstanceAccessor<&BpfProgramWrap::GetAutoload, &BpfProgramWrap::SetAutoload>("autoload"),
		InstanceAccessor<&BpfProgramWrap::GetFd>("fd"),
		InstanceMethod<&BpfProgramWrap::Attach>("attach"),
		InstanceMethod<&BpfProgramWrap::RunStats>("runStats"),
		InstanceMethod<&BpfProgramWrap::Id>("id"),
	});
	GetAddonData(env)->program_ctor = Napi::Persistent(ctor);
	return ctor;
}

BpfProgramWrap::BpfProgramWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<BpfProgramWrap>(info)
{
	if (!IsConstructToken(info[0])) {
		ThrowTypeError(info.Env(), "BpfProgram comes from BpfObject.program() or programs()");
		return;
	}
	info.This().As<Napi::Object>().TypeTag(&kProgramTag);
}

void BpfProgramWrap::Init(Napi::Object owner, struct bpf_program *prog)
{
	owner_ = Napi::Persistent(owner);
	owner_wrap_ = UnwrapObject(owner);
	prog_ = prog;
}

bool BpfProgramWrap::CheckOpen(Napi::Env env) const
{
	if (ObjectIsOpen(owner_wrap_))
		return true;
	ThrowClosed(env, "BpfObject");
	return false;
}

std::string BpfProgramWrap::Describe() const
{
	return std::string("'") + bpf_program__name(prog_) + "'";
}

int BpfProgramWrap::LoadedFd(Napi::Env env, const char *op) const
{
	int fd = bpf_program__fd(prog_);

	if (fd < 0)
		ThrowError(env, std::string(op) + ": BpfProgram " + Describe() + " is not loaded");
	return fd < 0 ? -1 : fd;
}

Napi::Value BpfProgramWrap::GetName(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	return Napi::String::New(info.Env(), bpf_program__name(prog_));
}

Napi::Value BpfProgramWrap::GetSection(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	return Napi::String::New(info.Env(), bpf_program__section_name(prog_));
}

Napi::Value BpfProgramWrap::GetType(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	return Napi::String::New(info.Env(), ProgTypeName(bpf_program__type(prog_)));
}

Napi::Value BpfProgramWrap::GetAttachType(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	return Napi::String::New(info.Env(), AttachTypeName(bpf_program__expected_attach_type(prog_)));
}

/* libbpf sets BPF_F_SLEEPABLE from the section (lsm.s/, fentry.s/, ...). */
Napi::Value BpfProgramWrap::GetSleepable(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	return Napi::Boolean::New(info.Env(), (bpf_program__flags(prog_) & BPF_F_SLEEPABLE) != 0);
}

Napi::Value BpfProgramWrap::GetAutoload(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	return Napi::Boolean::New(info.Env(), bpf_program__autoload(prog_));
}

void BpfProgramWrap::SetAutoload(const Napi::CallbackInfo &info, const Napi::Value &value)
{
	Napi::Env env = info.Env();
	LibbpfCall call;

	if (!CheckOpen(env))
		return;
	if (!value.IsBoolean()) {
		ThrowTypeError(env, "autoload must be a boolean");
		return;
	}
	/* Refused once the object is loaded (-EINVAL in libbpf 1.1). */
	int err = bpf_program__set_autoload(prog_, value.As<Napi::Boolean>().Value());
	if (err)
		ThrowErrno(env, "bpf_program__set_autoload", err, Describe());
}

Napi::Value BpfProgramWrap::GetFd(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	int fd = bpf_program__fd(prog_);
	return Napi::Number::New(info.Env(), fd < 0 ? -1 : fd);
}

/* libbpf picks the attach method from the section: lsm/, tp/, tp_btf/, ... */
Napi::Value BpfProgramWrap::Attach(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	LibbpfCall call;

	if (!CheckOpen(env))
		return env.Undefined();
	struct bpf_link *link = bpf_program__attach(prog_);
	if (!link) {
		ThrowErrno(env, "bpf_program__attach", errno, Describe());
		return env.Undefined();
	}
	return NewLinkWrap(env, link);
}

/* The kernel's view of the loaded program; false (and a JS throw) on failure. */
bool BpfProgramWrap::Info(Napi::Env env, const char *what, struct bpf_prog_info *prog_info)
{
	__u32 len = sizeof(*prog_info);
	LibbpfCall call;
	int fd;

	if (!CheckOpen(env) || (fd = LoadedFd(env, what)) < 0)
		return false;
	memset(prog_info, 0, sizeof(*prog_info));
	int err = bpf_obj_get_info_by_fd(fd, prog_info, &len);
	if (err) {
		ThrowErrno(env, "bpf_obj_get_info_by_fd", err, Describe());
		return false;
	}
	return true;
}

/* The counters only move while kernel.bpf_stats_enabled (or BPF_ENABLE_STATS) is on. */
Napi::Value BpfProgramWrap::RunStats(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	struct bpf_prog_info prog_info;

	if (!Info(env, "runStats", &prog_info))
		return env.Undefined();
	Napi::Object out = Napi::Object::New(env);
	out.Set("runTimeNs", Napi::BigInt::New(env, static_cast<uint64_t>(prog_info.run_time_ns)));
	out.Set("runCount", Napi::BigInt::New(env, static_cast<uint64_t>(prog_info.run_cnt)));
	return out;
}

Napi::Value BpfProgramWrap::Id(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	struct bpf_prog_info prog_info;

	if (!Info(env, "id", &prog_info))
		return env.Undefined();
	return Napi::Number::New(env, prog_info.id);
}

} /* namespace krsi */
