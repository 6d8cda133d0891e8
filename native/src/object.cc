// SPDX-License-Identifier: GPL-2.0
/*
 * BpfObject: a struct bpf_object, from open to close.
 *
 * Everything that depends only on the ELF (programs, maps, their sections
 * and types, global variables) is available after open; load() is the one
 * step that talks to the verifier.  Program and map wrappers point into the
 * bpf_object, so they keep its JS object alive and refuse to work once it
 * has been closed.
 */
#include "common.h"

#include <bpf/btf.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace krsi {

class BpfObjectWrap : public Napi::ObjectWrap<BpfObjectWrap> {
public:
	static Napi::Function Define(Napi::Env env);
	explicit BpfObjectWrap(const Napi::CallbackInfo &info);
	~BpfObjectWrap() override;

	bool IsOpen() const { return obj_ != nullptr; }
	bool LoadAttempted() const { return load_attempted_; }

private:
	static Napi::Value OpenFile(const Napi::CallbackInfo &info);
	static Napi::Value OpenBuffer(const Napi::CallbackInfo &info);
	static Napi::Value Adopt(Napi::Env env, struct bpf_object *obj, std::vector<uint8_t> elf);

	bool CheckOpen(Napi::Env env) const;
	std::string Describe() const;

	Napi::Value GetName(const Napi::CallbackInfo &info);
	Napi::Value GetLoaded(const Napi::CallbackInfo &info);
	Napi::Value SetGlobal(const Napi::CallbackInfo &info);
	Napi::Value Programs(const Napi::CallbackInfo &info);
	Napi::Value Program(const Napi::CallbackInfo &info);
	Napi::Value Maps(const Napi::CallbackInfo &info);
	Napi::Value Map(const Napi::CallbackInfo &info);
	Napi::Value Load(const Napi::CallbackInfo &info);
	Napi::Value Close(const Napi::CallbackInfo &info);

	struct bpf_object *obj_ = nullptr;
	/* open_mem's ELF: ours, so a JS Buffer can be reused or collected. */
	std::vector<uint8_t> elf_;
	bool load_attempted_ = false;
	bool loaded_ = false;
};

BpfObjectWrap *UnwrapObject(Napi::Object owner)
{
	return BpfObjectWrap::Unwrap(owner);
}

bool ObjectIsOpen(const BpfObjectWrap *obj)
{
	return obj && obj->IsOpen();
}

bool ObjectLoadAttempted(const BpfObjectWrap *obj)
{
	return obj && obj->LoadAttempted();
}

Napi::Function DefineBpfObject(Napi::Env env)
{
	return BpfObjectWrap::Define(env);
}

Napi::Function BpfObjectWrap::Define(Napi::Env env)
{
	Napi::Function ctor = DefineClass(env, "BpfObject", {
		StaticMethod<&BpfObjectWrap::OpenFile>("openFile"),
		StaticMethod<&BpfObjectWrap::OpenBuffer>("openBuffer"),
		InstanceAccessor<&BpfObjectWrap::GetName>("name"),
		InstanceAccessor<&BpfObjectWrap::GetLoaded>("loaded"),
		InstanceMethod<&BpfObjectWrap::SetGlobal>("setGlobal"),
		InstanceMethod<&BpfObjectWrap::Programs>("programs"),
		InstanceMethod<&BpfObjectWrap::Program>("program"),
		InstanceMethod<&BpfObjectWrap::Maps>("maps"),
		InstanceMethod<&BpfObjectWrap::Map>("map"),
		InstanceMethod<&BpfObjectWrap::Load>("load"),
		InstanceMethod<&BpfObjectWrap::Close>("close"),
	});
	GetAddonData(env)->object_ctor = Napi::Persistent(ctor);
	return ctor;
}

BpfObjectWrap::BpfObjectWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<BpfObjectWrap>(info)
{
	if (!IsConstructToken(info[0])) {
		ThrowTypeError(info.Env(), "use BpfObject.openFile() or BpfObject.openBuffer()");
		return;
	}
	info.This().As<Napi::Object>().TypeTag(&kObjectTag);
}

BpfObjectWrap::~BpfObjectWrap()
{
	FinalizerScope scope;

	bpf_object__close(obj_);
}

/* Options shared by both open calls; strings live until the call returns. */
struct OpenOptions {
	std::string btf_custom_path;
	std::string object_name;
	uint64_t kernel_log_level = 0;
	bool has_btf_custom_path = false;
	bool has_object_name = false;

	bool Parse(Napi::Env env, const Napi::Value &v)
	{
		if (v.IsUndefined())
			return true;
		if (!v.IsObject()) {
			ThrowTypeError(env, "open options must be an object");
			return false;
		}
		Napi::Object o = v.As<Napi::Object>();
		Napi::Value p = o.Get("btfCustomPath");
		if (!p.IsUndefined()) {
			if (!GetString(p, "btfCustomPath", &btf_custom_path))
				return false;
			has_btf_custom_path = true;
		}
		Napi::Value n = o.Get("objectName");
		if (!n.IsUndefined()) {
			if (!GetString(n, "objectName", &object_name))
				return false;
			has_object_name = true;
		}
		return GetOptionalUint(o.Get("kernelLogLevel"), "kernelLogLevel", 0, &kernel_log_level);
	}

	void Fill(struct bpf_object_open_opts *opts) const
	{
		if (has_btf_custom_path)
			opts->btf_custom_path = btf_custom_path.c_str();
		if (has_object_name)
			opts->object_name = object_name.c_str();
		opts->kernel_log_level = static_cast<__u32>(kernel_log_level);
	}
};

Napi::Value BpfObjectWrap::Adopt(Napi::Env env, struct bpf_object *obj, std::vector<uint8_t> elf)
{
	Napi::Object inst = GetAddonData(env)->object_ctor.New({ConstructToken(env)});
	if (env.IsExceptionPending()) {
		bpf_object__close(obj);
		return env.Undefined();
	}
	BpfObjectWrap *self = Unwrap(inst);
	self->obj_ = obj;
	self->elf_ = std::move(elf);
	return inst;
}

Napi::Value BpfObjectWrap::OpenFile(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	OpenOptions options;
	std::string path;
	LibbpfCall call;

	if (!GetString(info[0], "path", &path) || !options.Parse(env, info[1]))
		return env.Undefined();
	options.Fill(&opts);

	struct bpf_object *obj = bpf_object__open_file(path.c_str(), &opts);
	if (!obj) {
		ThrowErrno(env, "bpf_object__open_file", errno, "'" + path + "'");
		return env.Undefined();
	}
	return Adopt(env, obj, {});
}

Napi::Value BpfObjectWrap::OpenBuffer(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	OpenOptions options;
	std::string name;
	uint8_t *data;
	size_t len;
	LibbpfCall call;

	if (!GetBytes(info[0], "buffer", &data, &len) || !GetString(info[1], "name", &name) ||
	    !options.Parse(env, info[2]))
		return env.Undefined();
	/* open_mem names the object after this unless objectName is given. */
	if (!options.has_object_name) {
		options.object_name = name;
		options.has_object_name = true;
	}
	options.Fill(&opts);

	std::vector<uint8_t> elf(data, data + len);
	struct bpf_object *obj = bpf_object__open_mem(elf.data(), elf.size(), &opts);
	if (!obj) {
		ThrowErrno(env, "bpf_object__open_mem", errno, "'" + name + "'");
		return env.Undefined();
	}
	return Adopt(env, obj, std::move(elf));
}

bool BpfObjectWrap::CheckOpen(Napi::Env env) const
{
	if (obj_)
		return true;
	ThrowClosed(env, "BpfObject");
	return false;
}

std::string BpfObjectWrap::Describe() const
{
	return std::string("'") + bpf_object__name(obj_) + "'";
}

Napi::Value BpfObjectWrap::GetName(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	return Napi::String::New(info.Env(), bpf_object__name(obj_));
}

Napi::Value BpfObjectWrap::GetLoaded(const Napi::CallbackInfo &info)
{
	return Napi::Boolean::New(info.Env(), obj_ && loaded_);
}

/*
 * Global variables live in internal maps (.rodata, .data, .bss and custom
 * .rodata.* / .data.* sections) whose value type is the section's BTF
 * DATASEC; each VAR of the DATASEC gives the variable's offset and size.
 * Before load the initial value is ordinary writable memory of libbpf's.
 */
Napi::Value BpfObjectWrap::SetGlobal(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	std::string name;
	uint8_t *value;
	size_t len;

	if (!CheckOpen(env) || !GetString(info[0], "name", &name) ||
	    !GetBytes(info[1], "value", &value, &len))
		return env.Undefined();
	if (load_attempted_) {
		ThrowError(env, "setGlobal('" + name + "'): BpfObject " + Describe() +
					" is already loaded; globals are set before load()");
		return env.Undefined();
	}

	const struct btf *btf = bpf_object__btf(obj_);
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj_) {
		if (!btf || !bpf_map__is_internal(map))
			continue;
		const struct btf_type *sec = btf__type_by_id(btf, bpf_map__btf_value_type_id(map));
		if (!sec || !btf_is_datasec(sec))
			continue;
		/* .kconfig values are filled by libbpf at load, not by us. */
		if (strcmp(btf__name_by_offset(btf, sec->name_off), ".kconfig") == 0)
			continue;

		const struct btf_var_secinfo *vsi = btf_var_secinfos(sec);
		for (int i = 0; i < btf_vlen(sec); i++, vsi++) {
			const struct btf_type *var = btf__type_by_id(btf, vsi->type);
			if (!var || !btf_is_var(var) ||
			    name != btf__name_by_offset(btf, var->name_off))
				continue;
			if (len != vsi->size) {
				ThrowTypeError(env, "setGlobal('" + name + "'): the variable is " +
							    std::to_string(vsi->size) + " bytes, the value " +
							    std::to_string(len));
				return env.Undefined();
			}
			size_t size = 0;
			uint8_t *data = static_cast<uint8_t *>(
				const_cast<void *>(bpf_map__initial_value(map, &size)));
			if (!data || vsi->offset + vsi->size > size) {
				ThrowErrno(env, "bpf_map__initial_value", EINVAL,
					   "'" + std::string(bpf_map__name(map)) + "'");
				return env.Undefined();
			}
			memcpy(data + vsi->offset, value, len);
			return env.Undefined();
		}
	}
	ThrowErrno(env, "setGlobal", ENOENT,
		   "'" + name + "' (no such variable in the global sections of " + Describe() + ")");
	return env.Undefined();
}

Napi::Value BpfObjectWrap::Programs(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	struct bpf_program *prog;
	uint32_t i = 0;

	if (!CheckOpen(env))
		return env.Undefined();
	Napi::Array out = Napi::Array::New(env);
	bpf_object__for_each_program(prog, obj_) {
		Napi::Value w = NewProgramWrap(env, Value(), prog);
		if (env.IsExceptionPending())
			return env.Undefined();
		out.Set(i++, w);
	}
	return out;
}

Napi::Value BpfObjectWrap::Program(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	std::string name;

	if (!CheckOpen(env) || !GetString(info[0], "name", &name))
		return env.Undefined();
	struct bpf_program *prog = bpf_object__find_program_by_name(obj_, name.c_str());
	if (!prog) {
		ThrowErrno(env, "bpf_object__find_program_by_name", ENOENT,
			   "'" + name + "' in " + Describe());
		return env.Undefined();
	}
	return NewProgramWrap(env, Value(), prog);
}

Napi::Value BpfObjectWrap::Maps(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	struct bpf_map *map;
	uint32_t i = 0;

	if (!CheckOpen(env))
		return env.Undefined();
	Napi::Array out = Napi::Array::New(env);
	bpf_object__for_each_map(map, obj_) {
		Napi::Value w = NewMapWrap(env, Value(), map);
		if (env.IsExceptionPending())
			return env.Undefined();
		out.Set(i++, w);
	}
	return out;
}

Napi::Value BpfObjectWrap::Map(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	std::string name;

	if (!CheckOpen(env) || !GetString(info[0], "name", &name))
		return env.Undefined();
	struct bpf_map *map = bpf_object__find_map_by_name(obj_, name.c_str());
	if (!map) {
		ThrowErrno(env, "bpf_object__find_map_by_name", ENOENT,
			   "'" + name + "' in " + Describe());
		return env.Undefined();
	}
	return NewMapWrap(env, Value(), map);
}

/* Runs the verifier, synchronously: on failure the message carries its log. */
Napi::Value BpfObjectWrap::Load(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	LibbpfCall call;

	if (!CheckOpen(env))
		return env.Undefined();
	load_attempted_ = true;
	int err = bpf_object__load(obj_);
	if (err) {
		ThrowErrno(env, "bpf_object__load", err, Describe(), true);
		return env.Undefined();
	}
	loaded_ = true;
	return env.Undefined();
}

Napi::Value BpfObjectWrap::Close(const Napi::CallbackInfo &info)
{
	LibbpfCall call;

	bpf_object__close(obj_);
	obj_ = nullptr;
	elf_.clear();
	elf_.shrink_to_fit();
	return info.Env().Undefined();
}

} /* namespace krsi */
