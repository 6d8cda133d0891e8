// SPDX-License-Identifier: GPL-2.0
/*
 * BpfLink: an attachment (struct bpf_link), from bpf_program__attach() or
 * adopted from bpffs with bpf_link__open().
 *
 * A link does not depend on the bpf_object that made it: the kernel link
 * holds the program.  Closing the link (bpf_link__destroy) closes its fd,
 * which detaches it unless it is pinned; detach() ends the attachment even
 * when pinned.  The finalizer closes too, so a link dropped without close()
 * is detached at the next GC: keep a reference to what must stay attached.
 */
#include "common.h"

#include <cerrno>
#include <cstring>
#include <unistd.h>

namespace krsi {

class BpfLinkWrap : public Napi::ObjectWrap<BpfLinkWrap> {
public:
	static Napi::Function Define(Napi::Env env);
	explicit BpfLinkWrap(const Napi::CallbackInfo &info);
	~BpfLinkWrap() override;

	void Init(struct bpf_link *link) { link_ = link; }

private:
	static Napi::Value Open(const Napi::CallbackInfo &info);

	bool CheckOpen(Napi::Env env) const;
	/* bpf_obj_get_info_by_fd() on the link; throws on failure. */
	bool Info(Napi::Env env, struct bpf_link_info *link_info) const;

	Napi::Value GetFd(const Napi::CallbackInfo &info);
	Napi::Value GetPinPath(const Napi::CallbackInfo &info);
	Napi::Value Pin(const Napi::CallbackInfo &info);
	Napi::Value Unpin(const Napi::CallbackInfo &info);
	Napi::Value Detach(const Napi::CallbackInfo &info);
	Napi::Value Close(const Napi::CallbackInfo &info);
	Napi::Value Id(const Napi::CallbackInfo &info);
	Napi::Value GetInfo(const Napi::CallbackInfo &info);
	Napi::Value ReadIter(const Napi::CallbackInfo &info);

	struct bpf_link *link_ = nullptr;
};

Napi::Function DefineBpfLink(Napi::Env env)
{
	return BpfLinkWrap::Define(env);
}

Napi::Value NewLinkWrap(Napi::Env env, struct bpf_link *link)
{
	Napi::Object inst = GetAddonData(env)->link_ctor.New({ConstructToken(env)});
	if (env.IsExceptionPending()) {
		bpf_link__destroy(link);
		return env.Undefined();
	}
	BpfLinkWrap::Unwrap(inst)->Init(link);
	return inst;
}

Napi::Function BpfLinkWrap::Define(Napi::Env env)
{
	Napi::Function ctor = DefineClass(env, "BpfLink", {
		StaticMethod<&BpfLinkWrap::Open>("open"),
		InstanceAccessor<&BpfLinkWrap::GetFd>("fd"),
		InstanceAccessor<&BpfLinkWrap::GetPinPath>("pinPath"),
		InstanceMethod<&BpfLinkWrap::Pin>("pin"),
		InstanceMethod<&BpfLinkWrap::Unpin>("unpin"),
		InstanceMethod<&BpfLinkWrap::Detach>("detach"),
		InstanceMethod<&BpfLinkWrap::Close>("close"),
		InstanceMethod<&BpfLinkWrap::Id>("id"),
		InstanceMethod<&BpfLinkWrap::GetInfo>("info"),
		InstanceMethod<&BpfLinkWrap::ReadIter>("readIter"),
	});
	GetAddonData(env)->link_ctor = Napi::Persistent(ctor);
	return ctor;
}

BpfLinkWrap::BpfLinkWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<BpfLinkWrap>(info)
{
	if (!IsConstructToken(info[0])) {
		ThrowTypeError(info.Env(), "BpfLink comes from BpfProgram.attach() or BpfLink.open()");
		return;
	}
	info.This().As<Napi::Object>().TypeTag(&kLinkTag);
}

BpfLinkWrap::~BpfLinkWrap()
{
	FinalizerScope scope;

	bpf_link__destroy(link_);
}

/* Adopts a pinned link: closing it later leaves the pin, and the attachment, in place. */
Napi::Value BpfLinkWrap::Open(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	std::string path;
	LibbpfCall call;

	if (!GetString(info[0], "pinPath", &path))
		return env.Undefined();
	struct bpf_link *link = bpf_link__open(path.c_str());
	if (!link) {
		ThrowErrno(env, "bpf_link__open", errno, "'" + path + "'");
		return env.Undefined();
	}
	return NewLinkWrap(env, link);
}

bool BpfLinkWrap::CheckOpen(Napi::Env env) const
{
	if (link_)
		return true;
	ThrowClosed(env, "BpfLink");
	return false;
}

Napi::Value BpfLinkWrap::GetFd(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	return Napi::Number::New(info.Env(), bpf_link__fd(link_));
}

Napi::Value BpfLinkWrap::GetPinPath(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();

	if (!CheckOpen(env))
		return env.Undefined();
	const char *path = bpf_link__pin_path(link_);
	return path ? Napi::String::New(env, path) : env.Null();
}

Napi::Value BpfLinkWrap::Pin(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	std::string path;
	LibbpfCall call;

	if (!CheckOpen(env) || !GetString(info[0], "path", &path))
		return env.Undefined();
	int err = bpf_link__pin(link_, path.c_str());
	if (err)
		ThrowErrno(env, "bpf_link__pin", err, "at '" + path + "'");
	return env.Undefined();
}

Napi::Value BpfLinkWrap::Unpin(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	LibbpfCall call;

	if (!CheckOpen(env))
		return env.Undefined();
	int err = bpf_link__unpin(link_);
	if (err)
		ThrowErrno(env, "bpf_link__unpin", err, "");
	return env.Undefined();
}

/* BPF_LINK_DETACH: the link stays open but defunct; not every link type supports it. */
Napi::Value BpfLinkWrap::Detach(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	LibbpfCall call;

	if (!CheckOpen(env))
		return env.Undefined();
	int err = bpf_link__detach(link_);
	if (err)
		ThrowErrno(env, "bpf_link__detach", err, "");
	return env.Undefined();
}

Napi::Value BpfLinkWrap::Close(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	LibbpfCall call;

	if (!link_)
		return env.Undefined();
	int err = bpf_link__destroy(link_);
	link_ = nullptr;
	if (err)
		ThrowErrno(env, "bpf_link__destroy", err, "");
	return env.Undefined();
}

/* libbpf 1.1 has no bpf_link_get_info_by_fd(); the generic call fills the same struct. */
bool BpfLinkWrap::Info(Napi::Env env, struct bpf_link_info *link_info) const
{
	__u32 len = sizeof(*link_info);

	memset(link_info, 0, sizeof(*link_info));
	int err = bpf_obj_get_info_by_fd(bpf_link__fd(link_), link_info, &len);
	if (err) {
		ThrowErrno(env, "bpf_obj_get_info_by_fd", err, "");
		return false;
	}
	return true;
}

Napi::Value BpfLinkWrap::Id(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	struct bpf_link_info link_info;
	LibbpfCall call;

	if (!CheckOpen(env) || !Info(env, &link_info))
		return env.Undefined();
	return Napi::Number::New(env, link_info.id);
}

/*
 * Runs an iterator link (iter/ programs) once: bpf_iter_create() gives a
 * seq_file whose reads run the program over every object; returns its
 * whole output.  Bounded, so that a runaway iterator cannot eat the heap.
 */
Napi::Value BpfLinkWrap::ReadIter(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const size_t limit = 64u << 20;
	std::string out;
	char buf[16384];
	LibbpfCall call;

	if (!CheckOpen(env))
		return env.Undefined();
	int fd = bpf_iter_create(bpf_link__fd(link_));
	if (fd < 0) {
		ThrowErrno(env, "bpf_iter_create", errno, "");
		return env.Undefined();
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			close(fd);
			ThrowErrno(env, "read", err, "iterator");
			return env.Undefined();
		}
		if (n == 0)
			break;
		if (out.size() + n > limit) {
			close(fd);
			ThrowErrno(env, "read", E2BIG, "iterator output over 64 MiB");
			return env.Undefined();
		}
		out.append(buf, n);
	}
	close(fd);
	return Napi::Buffer<char>::Copy(env, out.data(), out.size());
}

/* What identifies a link found in bpffs: its id, its program's id and its kind. */
Napi::Value BpfLinkWrap::GetInfo(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	struct bpf_link_info link_info;
	LibbpfCall call;

	if (!CheckOpen(env) || !Info(env, &link_info))
		return env.Undefined();
	Napi::Object out = Napi::Object::New(env);
	out.Set("id", Napi::Number::New(env, link_info.id));
	out.Set("progId", Napi::Number::New(env, link_info.prog_id));
	out.Set("type", Napi::String::New(env, LinkTypeName(static_cast<enum bpf_link_type>(link_info.type))));
	return out;
}

} /* namespace krsi */
