// SPDX-License-Identifier: GPL-2.0
/*
 * BpfMap: a map of an object (struct bpf_map, owned by the object), or a
 * standalone handle: an fd of ours on a pinned map (bpf_obj_get), a map
 * found by id (bpf_map_get_fd_by_id) or one we created (bpf_map_create).
 * A standalone handle's fd is closed by close() or, failing that, by the
 * finalizer; the kernel map lives on while anything else holds it (a pin,
 * an outer map, a loaded program, another fd).
 *
 * Keys and values cross as raw bytes; their sizes are checked against the
 * map's, because the kernel reads and writes exactly key_size/value_size
 * bytes at the pointers we pass.  Per-CPU maps take and return one slot per
 * possible CPU, each the value size rounded up to 8 bytes.
 */
#include "common.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace krsi {

class BpfMapWrap : public Napi::ObjectWrap<BpfMapWrap> {
public:
	static Napi::Function Define(Napi::Env env);
	explicit BpfMapWrap(const Napi::CallbackInfo &info);
	~BpfMapWrap() override;

	void InitOwned(Napi::Object owner, struct bpf_map *map);
	void InitStandalone(int fd, const struct bpf_map_info &info, const std::string &path);

	bool CheckOpen(Napi::Env env) const;
	/* Like CheckOpen() without throwing. */
	bool IsOpen() const;
	enum bpf_map_type Type() const;
	int Fd() const;
	std::string Describe() const;

private:
	static Napi::Value OpenPinned(const Napi::CallbackInfo &info);
	static Napi::Value OpenById(const Napi::CallbackInfo &info);
	static Napi::Value Create(const Napi::CallbackInfo &info);
	/* Wraps an fd of ours on a map; closes it and throws on failure. */
	static Napi::Value AdoptFd(Napi::Env env, int fd, const std::string &path,
				   const std::string &what);

	uint32_t KeySize() const;
	uint32_t ValueSize() const;
	uint32_t MaxEntries() const;
	/* Bytes of one value as user space sees it (per-CPU: all CPUs). */
	size_t ValueBytes() const;
	/* The map's fd, or -1 after throwing: the map is not created yet. */
	int CreatedFd(Napi::Env env, const char *op) const;
	bool CheckKey(Napi::Env env, size_t len) const;
	/* Throws a TypeError unless this is an array_of_maps or hash_of_maps. */
	bool CheckMapInMap(Napi::Env env, const char *op) const;

	Napi::Value GetName(const Napi::CallbackInfo &info);
	Napi::Value GetType(const Napi::CallbackInfo &info);
	Napi::Value GetKeySize(const Napi::CallbackInfo &info);
	Napi::Value GetValueSize(const Napi::CallbackInfo &info);
	Napi::Value GetMaxEntries(const Napi::CallbackInfo &info);
	Napi::Value GetFd(const Napi::CallbackInfo &info);
	Napi::Value GetPerCpu(const Napi::CallbackInfo &info);
	Napi::Value GetPinPath(const Napi::CallbackInfo &info);
	Napi::Value SetMaxEntries(const Napi::CallbackInfo &info);
	Napi::Value GetAutocreate(const Napi::CallbackInfo &info);
	void SetAutocreate(const Napi::CallbackInfo &info, const Napi::Value &value);
	Napi::Value Pin(const Napi::CallbackInfo &info);
	Napi::Value Unpin(const Napi::CallbackInfo &info);
	Napi::Value Lookup(const Napi::CallbackInfo &info);
	Napi::Value Update(const Napi::CallbackInfo &info);
	Napi::Value Delete(const Napi::CallbackInfo &info);
	Napi::Value Keys(const Napi::CallbackInfo &info);
	Napi::Value LookupBatch(const Napi::CallbackInfo &info);
	Napi::Value UpdateBatch(const Napi::CallbackInfo &info);
	Napi::Value DeleteBatch(const Napi::CallbackInfo &info);
	Napi::Value Freeze(const Napi::CallbackInfo &info);
	Napi::Value Id(const Napi::CallbackInfo &info);
	Napi::Value SetInnerMap(const Napi::CallbackInfo &info);
	Napi::Value InnerMapId(const Napi::CallbackInfo &info);
	Napi::Value Reuse(const Napi::CallbackInfo &info);
	Napi::Value Close(const Napi::CallbackInfo &info);

	/* Owned by an object: */
	Napi::ObjectReference owner_;
	BpfObjectWrap *owner_wrap_ = nullptr;
	struct bpf_map *map_ = nullptr;

	/* Standalone: */
	bool standalone_ = false;
	int fd_ = -1;
	std::string name_;
	struct bpf_map_info info_ = {};
	std::string pin_path_;
};

Napi::Function DefineBpfMap(Napi::Env env)
{
	return BpfMapWrap::Define(env);
}

Napi::Value NewMapWrap(Napi::Env env, Napi::Object owner, struct bpf_map *map)
{
	Napi::Object inst = GetAddonData(env)->map_ctor.New({ConstructToken(env)});
	if (env.IsExceptionPending())
		return env.Undefined();
	BpfMapWrap::Unwrap(inst)->InitOwned(owner, map);
	return inst;
}

int MapFdForReader(const Napi::Value &v, const std::string &what, enum bpf_map_type type)
{
	std::string expected = "BpfMap as " + what;
	BpfMapWrap *map = UnwrapTagged<BpfMapWrap>(v, &kMapTag, expected.c_str());

	if (!map || !map->CheckOpen(v.Env()))
		return -1;
	if (map->Type() != type) {
		ThrowTypeError(v.Env(), what + " (" + map->Describe() + ") is a " + MapTypeName(map->Type()) +
						" map, not a " + MapTypeName(type));
		return -1;
	}
	if (map->Fd() < 0) {
		ThrowError(v.Env(), what + " (" + map->Describe() + ") is not created yet: load its BpfObject first");
		return -1;
	}
	return map->Fd();
}

Napi::Function BpfMapWrap::Define(Napi::Env env)
{
	Napi::Function ctor = DefineClass(env, "BpfMap", {
		StaticMethod<&BpfMapWrap::OpenPinned>("openPinned"),
		StaticMethod<&BpfMapWrap::OpenById>("openById"),
		StaticMethod<&BpfMapWrap::Create>("create"),
		InstanceAccessor<&BpfMapWrap::GetName>("name"),
		InstanceAccessor<&BpfMapWrap::GetType>("type"),
		InstanceAccessor<&BpfMapWrap::GetKeySize>("keySize"),
		InstanceAccessor<&BpfMapWrap::GetValueSize>("valueSize"),
		InstanceAccessor<&BpfMapWrap::GetMaxEntries>("maxEntries"),
		InstanceAccessor<&BpfMapWrap::GetFd>("fd"),
		InstanceAccessor<&BpfMapWrap::GetPerCpu>("perCpu"),
		InstanceAccessor<&BpfMapWrap::GetPinPath>("pinPath"),
		InstanceMethod<&BpfMapWrap::SetMaxEntries>("setMaxEntries"),
		InstanceAccessor<&BpfMapWrap::GetAutocreate, &BpfMapWrap::SetAutocreate>("autocreate"),
		InstanceMethod<&BpfMapWrap::Pin>("pin"),
		InstanceMethod<&BpfMapWrap::Unpin>("unpin"),
		InstanceMethod<&BpfMapWrap::Lookup>("lookup"),
		InstanceMethod<&BpfMapWrap::Update>("update"),
		InstanceMethod<&BpfMapWrap::Delete>("delete"),
		InstanceMethod<&BpfMapWrap::Keys>("keys"),
		InstanceMethod<&BpfMapWrap::LookupBatch>("lookupBatch"),
		InstanceMethod<&BpfMapWrap::UpdateBatch>("updateBatch"),
		InstanceMethod<&BpfMapWrap::DeleteBatch>("deleteBatch"),
		InstanceMethod<&BpfMapWrap::Freeze>("freeze"),
		InstanceMethod<&BpfMapWrap::Id>("id"),
		InstanceMethod<&BpfMapWrap::SetInnerMap>("setInnerMap"),
		InstanceMethod<&BpfMapWrap::InnerMapId>("innerMapId"),
		InstanceMethod<&BpfMapWrap::Reuse>("reuse"),
		InstanceMethod<&BpfMapWrap::Close>("close"),
	});
	GetAddonData(env)->map_ctor = Napi::Persistent(ctor);
	return ctor;
}

BpfMapWrap::BpfMapWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<BpfMapWrap>(info)
{
	if (!IsConstructToken(info[0])) {
		ThrowTypeError(info.Env(), "BpfMap comes from BpfObject.map(), maps(), BpfMap.openPinned(), "
					   "BpfMap.openById() or BpfMap.create()");
		return;
	}
	info.This().As<Napi::Object>().TypeTag(&kMapTag);
}

BpfMapWrap::~BpfMapWrap()
{
	if (standalone_ && fd_ >= 0)
		close(fd_);
}

void BpfMapWrap::InitOwned(Napi::Object owner, struct bpf_map *map)
{
	owner_ = Napi::Persistent(owner);
	owner_wrap_ = UnwrapObject(owner);
	map_ = map;
}

void BpfMapWrap::InitStandalone(int fd, const struct bpf_map_info &info, const std::string &path)
{
	standalone_ = true;
	fd_ = fd;
	info_ = info;
	name_ = info.name;
	pin_path_ = path;
}

bool BpfMapWrap::IsOpen() const
{
	return standalone_ ? fd_ >= 0 : ObjectIsOpen(owner_wrap_);
}

bool BpfMapWrap::CheckOpen(Napi::Env env) const
{
	if (IsOpen())
		return true;
	ThrowClosed(env, standalone_ ? "BpfMap" : "BpfObject");
	return false;
}

enum bpf_map_type BpfMapWrap::Type() const
{
	return standalone_ ? static_cast<enum bpf_map_type>(info_.type) : bpf_map__type(map_);
}

int BpfMapWrap::Fd() const
{
	int fd = standalone_ ? fd_ : bpf_map__fd(map_);

	return fd < 0 ? -1 : fd;
}

std::string BpfMapWrap::Describe() const
{
	return "'" + (standalone_ ? name_ : std::string(bpf_map__name(map_))) + "'";
}

uint32_t BpfMapWrap::KeySize() const
{
	return standalone_ ? info_.key_size : bpf_map__key_size(map_);
}

uint32_t BpfMapWrap::ValueSize() const
{
	return standalone_ ? info_.value_size : bpf_map__value_size(map_);
}

uint32_t BpfMapWrap::MaxEntries() const
{
	return standalone_ ? info_.max_entries : bpf_map__max_entries(map_);
}

size_t BpfMapWrap::ValueBytes() const
{
	return IsPerCpuMapType(Type()) ? PerCpuValueSize(ValueSize()) : ValueSize();
}

int BpfMapWrap::CreatedFd(Napi::Env env, const char *op) const
{
	int fd = Fd();

	if (fd < 0)
		ThrowError(env, std::string(op) + ": BpfMap " + Describe() +
					" is not created yet: load its BpfObject first");
	return fd;
}

bool BpfMapWrap::CheckKey(Napi::Env env, size_t len) const
{
	if (len == KeySize())
		return true;
	ThrowTypeError(env, "BpfMap " + Describe() + ": key is " + std::to_string(len) +
				    " bytes, the map's keys are " + std::to_string(KeySize()));
	return false;
}

static bool IsMapInMapType(enum bpf_map_type type)
{
	return type == BPF_MAP_TYPE_ARRAY_OF_MAPS || type == BPF_MAP_TYPE_HASH_OF_MAPS;
}

bool BpfMapWrap::CheckMapInMap(Napi::Env env, const char *op) const
{
	if (IsMapInMapType(Type()))
		return true;
	ThrowTypeError(env, std::string(op) + ": BpfMap " + Describe() + " is a " + MapTypeName(Type()) +
				    " map; only array_of_maps and hash_of_maps maps hold maps");
	return false;
}

/*
 * The fd of a BpfMap given as an argument (an inner map, a map to reuse):
 * every way it can be unusable is a TypeError naming `what`, since the
 * problem is the argument, not the map the call is made on.
 */
static int ArgumentMapFd(const Napi::Value &v, const std::string &what)
{
	Napi::Env env = v.Env();
	BpfMapWrap *map = UnwrapTagged<BpfMapWrap>(v, &kMapTag, ("BpfMap as " + what).c_str());

	if (!map)
		return -1;
	if (!map->IsOpen()) {
		ThrowTypeError(env, what + ": the BpfMap (or its BpfObject) is closed");
		return -1;
	}
	if (map->Fd() < 0) {
		ThrowTypeError(env, what + ": BpfMap " + map->Describe() +
					    " is not created yet: load its BpfObject first");
		return -1;
	}
	return map->Fd();
}

static bool MapInfoByFd(int fd, struct bpf_map_info *map_info, int *err)
{
	__u32 len = sizeof(*map_info);

	memset(map_info, 0, sizeof(*map_info));
	*err = bpf_obj_get_info_by_fd(fd, map_info, &len);
	return *err == 0;
}

/*
 * bpf_obj_get() also opens pinned programs and links; fdinfo says what the
 * fd is (libbpf reads it the same way when the kernel lacks map info).
 */
static bool FdIsMap(int fd)
{
	char path[64], line[256];
	bool is_map = false;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "map_type:", 9) == 0)
			is_map = true;
	fclose(f);
	return is_map;
}

Napi::Value BpfMapWrap::OpenPinned(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	std::string path;
	LibbpfCall call;

	if (!GetString(info[0], "path", &path))
		return env.Undefined();
	int fd = bpf_obj_get(path.c_str());
	if (fd < 0) {
		ThrowErrno(env, "bpf_obj_get", fd, "'" + path + "'");
		return env.Undefined();
	}
	if (!FdIsMap(fd)) {
		close(fd);
		ThrowErrno(env, "bpf_obj_get", EINVAL, "'" + path + "' (not a map)");
		return env.Undefined();
	}
	return AdoptFd(env, fd, path, "'" + path + "'");
}

Napi::Value BpfMapWrap::AdoptFd(Napi::Env env, int fd, const std::string &path, const std::string &what)
{
	struct bpf_map_info map_info;
	int err;

	if (!MapInfoByFd(fd, &map_info, &err)) {
		close(fd);
		ThrowErrno(env, "bpf_obj_get_info_by_fd", err, what);
		return env.Undefined();
	}
	Napi::Object inst = GetAddonData(env)->map_ctor.New({ConstructToken(env)});
	if (env.IsExceptionPending()) {
		close(fd);
		return env.Undefined();
	}
	Unwrap(inst)->InitStandalone(fd, map_info, path);
	return inst;
}

/* Another fd on the map: it stays alive while this handle is open, even unpinned. */
Napi::Value BpfMapWrap::OpenById(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	uint64_t id;
	LibbpfCall call;

	if (!GetOptionalUint(info[0], "id", UINT64_MAX, &id))
		return env.Undefined();
	if (id == 0 || id > UINT32_MAX) {
		ThrowTypeError(env, "id must be a kernel map id (1 to 2^32-1)");
		return env.Undefined();
	}
	int fd = bpf_map_get_fd_by_id(static_cast<__u32>(id));
	if (fd < 0) {
		ThrowErrno(env, "bpf_map_get_fd_by_id", fd, "id " + std::to_string(id));
		return env.Undefined();
	}
	return AdoptFd(env, fd, "", "id " + std::to_string(id));
}

/* A required (or, with dflt, optional) 32-bit field of an options object. */
static bool GetU32Field(const Napi::Object &o, const char *key, const uint32_t *dflt, uint32_t *out)
{
	Napi::Env env = o.Env();
	std::string what = std::string("map spec: ") + key;
	Napi::Value v = o.Get(key);
	uint64_t n;

	if (env.IsExceptionPending())
		return false;
	if (v.IsUndefined() && dflt) {
		*out = *dflt;
		return true;
	}
	if (v.IsUndefined()) {
		ThrowTypeError(env, what + " is required");
		return false;
	}
	if (!GetOptionalUint(v, what.c_str(), 0, &n))
		return false;
	if (n > UINT32_MAX) {
		ThrowTypeError(env, what + " must fit in 32 bits");
		return false;
	}
	*out = static_cast<uint32_t>(n);
	return true;
}

/*
 * bpf_map_create() without BTF: fine for plain maps, refused by the kernel
 * for those that need BTF of their keys and values (local storage maps,
 * maps with spin locks or timers).
 */
Napi::Value BpfMapWrap::Create(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	static const uint32_t zero = 0;
	enum bpf_map_type type;
	uint32_t key_size, value_size, max_entries, flags;
	std::string name;
	int inner_fd = -1;
	LibbpfCall call;

	if (!info[0].IsObject()) {
		ThrowTypeError(env, "map spec must be an object");
		return env.Undefined();
	}
	Napi::Object spec = info[0].As<Napi::Object>();
	if (!MapTypeByName(env, spec.Get("type"), &type))
		return env.Undefined();
	Napi::Value name_v = spec.Get("name");
	if (!name_v.IsUndefined() && !GetString(name_v, "map spec: name", &name))
		return env.Undefined();
	/* libbpf would silently cut a longer name to the kernel's 15 characters. */
	if (name.size() >= BPF_OBJ_NAME_LEN) {
		ThrowTypeError(env, "map spec: name '" + name + "' is longer than " +
					    std::to_string(BPF_OBJ_NAME_LEN - 1) + " characters");
		return env.Undefined();
	}
	if (!GetU32Field(spec, "keySize", nullptr, &key_size) ||
	    !GetU32Field(spec, "valueSize", nullptr, &value_size) ||
	    !GetU32Field(spec, "maxEntries", nullptr, &max_entries) ||
	    !GetU32Field(spec, "flags", &zero, &flags))
		return env.Undefined();
	Napi::Value inner = spec.Get("innerMap");
	if (IsMapInMapType(type)) {
		if (inner.IsUndefined()) {
			ThrowTypeError(env, "map spec: a " + MapTypeName(type) +
						    " map needs innerMap, a BpfMap of the shape its maps will have");
			return env.Undefined();
		}
		if ((inner_fd = ArgumentMapFd(inner, "map spec: innerMap")) < 0)
			return env.Undefined();
	} else if (!inner.IsUndefined()) {
		ThrowTypeError(env, "map spec: innerMap is for array_of_maps and hash_of_maps, not " +
					    MapTypeName(type));
		return env.Undefined();
	}

	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
	if (inner_fd >= 0)
		opts.inner_map_fd = static_cast<__u32>(inner_fd);
	std::string what = "'" + name + "' (" + MapTypeName(type) + ")";
	int fd = bpf_map_create(type, name.empty() ? nullptr : name.c_str(), key_size, value_size,
				max_entries, &opts);
	if (fd < 0) {
		ThrowErrno(env, "bpf_map_create", fd, what);
		return env.Undefined();
	}
	return AdoptFd(env, fd, "", what);
}

Napi::Value BpfMapWrap::GetName(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	return Napi::String::New(info.Env(), standalone_ ? name_ : bpf_map__name(map_));
}

Napi::Value BpfMapWrap::GetType(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	return Napi::String::New(info.Env(), MapTypeName(Type()));
}

Napi::Value BpfMapWrap::GetKeySize(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	return Napi::Number::New(info.Env(), KeySize());
}

Napi::Value BpfMapWrap::GetValueSize(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	return Napi::Number::New(info.Env(), ValueSize());
}

Napi::Value BpfMapWrap::GetMaxEntries(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	return Napi::Number::New(info.Env(), MaxEntries());
}

Napi::Value BpfMapWrap::GetFd(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	return Napi::Number::New(info.Env(), Fd());
}

Napi::Value BpfMapWrap::GetPerCpu(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	return Napi::Boolean::New(info.Env(), IsPerCpuMapType(Type()));
}

Napi::Value BpfMapWrap::GetPinPath(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();

	if (!CheckOpen(env))
		return env.Undefined();
	if (standalone_)
		return pin_path_.empty() ? env.Null() : Napi::String::New(env, pin_path_);
	/* libbpf keeps pin_path after unpin; only a pinned map has one. */
	if (!bpf_map__is_pinned(map_) || !bpf_map__pin_path(map_))
		return env.Null();
	return Napi::String::New(env, bpf_map__pin_path(map_));
}

Napi::Value BpfMapWrap::SetMaxEntries(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	uint64_t n;
	LibbpfCall call;

	if (!CheckOpen(env) || !GetOptionalUint(info[0], "maxEntries", UINT64_MAX, &n))
		return env.Undefined();
	if (n > UINT32_MAX) {
		ThrowTypeError(env, "maxEntries must fit in 32 bits");
		return env.Undefined();
	}
	if (standalone_) {
		ThrowErrno(env, "bpf_map__set_max_entries", EBUSY, Describe() + " (a pinned map exists already)");
		return env.Undefined();
	}
	/* -EBUSY once the map is created. */
	int err = bpf_map__set_max_entries(map_, static_cast<__u32>(n));
	if (err)
		ThrowErrno(env, "bpf_map__set_max_entries", err, Describe());
	return env.Undefined();
}

Napi::Value BpfMapWrap::GetAutocreate(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	return Napi::Boolean::New(info.Env(), standalone_ || bpf_map__autocreate(map_));
}

void BpfMapWrap::SetAutocreate(const Napi::CallbackInfo &info, const Napi::Value &value)
{
	Napi::Env env = info.Env();
	LibbpfCall call;

	if (!CheckOpen(env))
		return;
	if (!value.IsBoolean()) {
		ThrowTypeError(env, "autocreate must be a boolean");
		return;
	}
	if (standalone_) {
		ThrowErrno(env, "bpf_map__set_autocreate", EBUSY, Describe() + " (a standalone map exists already)");
		return;
	}
	/* -EBUSY once the object is loaded. */
	int err = bpf_map__set_autocreate(map_, value.As<Napi::Boolean>().Value());
	if (err)
		ThrowErrno(env, "bpf_map__set_autocreate", err, Describe());
}

Napi::Value BpfMapWrap::Pin(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	std::string path;
	LibbpfCall call;
	int fd;

	if (!CheckOpen(env) || !GetString(info[0], "path", &path) ||
	    (fd = CreatedFd(env, "pin")) < 0)
		return env.Undefined();
	if (standalone_) {
		if (!pin_path_.empty()) {
			ThrowErrno(env, "bpf_obj_pin", EEXIST, Describe() + " (pinned at '" + pin_path_ + "')");
			return env.Undefined();
		}
		/* Like libbpf's own pins: the parent directory is created (0700) if missing. */
		size_t slash = path.find_last_of('/');
		std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);
		if (!dir.empty() && mkdir(dir.c_str(), 0700) && errno != EEXIST) {
			ThrowErrno(env, "mkdir", errno, "'" + dir + "'");
			return env.Undefined();
		}
		int err = bpf_obj_pin(fd, path.c_str());
		if (err) {
			ThrowErrno(env, "bpf_obj_pin", err, "'" + path + "'");
			return env.Undefined();
		}
		pin_path_ = path;
		return env.Undefined();
	}
	/* libbpf refuses a new path while an old one is remembered, even unpinned. */
	if (!bpf_map__is_pinned(map_)) {
		int err = bpf_map__set_pin_path(map_, path.c_str());
		if (err) {
			ThrowErrno(env, "bpf_map__set_pin_path", err, Describe());
			return env.Undefined();
		}
	}
	int err = bpf_map__pin(map_, path.c_str());
	if (err)
		ThrowErrno(env, "bpf_map__pin", err, Describe() + " at '" + path + "'");
	return env.Undefined();
}

Napi::Value BpfMapWrap::Unpin(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	LibbpfCall call;

	if (!CheckOpen(env))
		return env.Undefined();
	if (standalone_) {
		if (pin_path_.empty()) {
			ThrowErrno(env, "unlink", EINVAL, Describe() + " (not pinned)");
			return env.Undefined();
		}
		if (unlink(pin_path_.c_str())) {
			ThrowErrno(env, "unlink", errno, "'" + pin_path_ + "'");
			return env.Undefined();
		}
		pin_path_.clear();
		return env.Undefined();
	}
	if (!bpf_map__is_pinned(map_)) {
		ThrowErrno(env, "bpf_map__unpin", EINVAL, Describe() + " (not pinned)");
		return env.Undefined();
	}
	int err = bpf_map__unpin(map_, nullptr);
	if (err)
		ThrowErrno(env, "bpf_map__unpin", err, Describe());
	return env.Undefined();
}

Napi::Value BpfMapWrap::Lookup(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	uint8_t *key;
	size_t key_len;
	int fd;

	if (!CheckOpen(env) || !GetBytes(info[0], "key", &key, &key_len) ||
	    !CheckKey(env, key_len) || (fd = CreatedFd(env, "lookup")) < 0)
		return env.Undefined();
	Napi::Buffer<uint8_t> value = Napi::Buffer<uint8_t>::New(env, ValueBytes());
	int err = bpf_map_lookup_elem(fd, key, value.Data());
	if (err == -ENOENT)
		return env.Null();
	if (err) {
		ThrowErrno(env, "bpf_map_lookup_elem", err, Describe());
		return env.Undefined();
	}
	return value;
}

Napi::Value BpfMapWrap::Update(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	uint8_t *key, *value;
	size_t key_len, value_len;
	uint64_t flags;
	int fd;

	if (!CheckOpen(env) || !GetBytes(info[0], "key", &key, &key_len) ||
	    !GetBytes(info[1], "value", &value, &value_len) ||
	    !GetOptionalUint(info[2], "flags", BPF_ANY, &flags) || !CheckKey(env, key_len) ||
	    (fd = CreatedFd(env, "update")) < 0)
		return env.Undefined();
	if (value_len != ValueBytes()) {
		ThrowTypeError(env, "BpfMap " + Describe() + ": value is " + std::to_string(value_len) +
					    " bytes, the map takes " + std::to_string(ValueBytes()));
		return env.Undefined();
	}
	int err = bpf_map_update_elem(fd, key, value, flags);
	if (err)
		ThrowErrno(env, "bpf_map_update_elem", err, Describe());
	return env.Undefined();
}

Napi::Value BpfMapWrap::Delete(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	uint8_t *key;
	size_t key_len;
	int fd;

	if (!CheckOpen(env) || !GetBytes(info[0], "key", &key, &key_len) ||
	    !CheckKey(env, key_len) || (fd = CreatedFd(env, "delete")) < 0)
		return env.Undefined();
	int err = bpf_map_delete_elem(fd, key);
	if (err == -ENOENT)
		return Napi::Boolean::New(env, false);
	if (err) {
		ThrowErrno(env, "bpf_map_delete_elem", err, Describe());
		return env.Undefined();
	}
	return Napi::Boolean::New(env, true);
}

/*
 * Walks the keys with BPF_MAP_GET_NEXT_KEY.  A hash map being modified
 * meanwhile can restart the walk, so it stops after max_entries keys.
 */
Napi::Value BpfMapWrap::Keys(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	int fd;

	if (!CheckOpen(env) || (fd = CreatedFd(env, "keys")) < 0)
		return env.Undefined();
	size_t ks = KeySize();
	std::vector<uint8_t> cur(ks ? ks : 1), next(ks ? ks : 1);
	Napi::Array out = Napi::Array::New(env);
	uint32_t n = 0, limit = MaxEntries();

	while (n < limit) {
		int err = bpf_map_get_next_key(fd, n ? cur.data() : nullptr, next.data());
		if (err == -ENOENT)
			break;
		if (err) {
			ThrowErrno(env, "bpf_map_get_next_key", err, Describe());
			return env.Undefined();
		}
		out.Set(n++, Napi::Buffer<uint8_t>::Copy(env, next.data(), ks));
		cur.swap(next);
	}
	return out;
}

/*
 * The whole map in as few BPF_MAP_LOOKUP_BATCH calls as it takes.  The
 * batch token is the next key for arrays and a u32 bucket for hashes: one
 * buffer of max(key size, 8) fits both.
 */
Napi::Value BpfMapWrap::LookupBatch(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	int fd;

	if (!CheckOpen(env) || (fd = CreatedFd(env, "lookupBatch")) < 0)
		return env.Undefined();
	size_t ks = KeySize(), vs = ValueBytes(), cap = MaxEntries();
	std::vector<uint8_t> keys(cap * ks), values(cap * vs);
	std::vector<uint8_t> in_token(std::max<size_t>(ks, 8)), out_token(in_token.size());
	size_t total = 0;
	bool first = true;

	while (total < cap) {
		__u32 count = static_cast<__u32>(cap - total);
		int err = bpf_map_lookup_batch(fd, first ? nullptr : in_token.data(), out_token.data(),
					       keys.data() + total * ks, values.data() + total * vs,
					       &count, &opts);
		if (err && err != -ENOENT) {
			ThrowErrno(env, "bpf_map_lookup_batch", err, Describe());
			return env.Undefined();
		}
		total += count;
		if (err == -ENOENT)
			break;
		in_token.swap(out_token);
		first = false;
	}

	Napi::Object out = Napi::Object::New(env);
	out.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), total * ks));
	out.Set("values", Napi::Buffer<uint8_t>::Copy(env, values.data(), total * vs));
	out.Set("count", Napi::Number::New(env, static_cast<double>(total)));
	return out;
}

Napi::Value BpfMapWrap::UpdateBatch(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	uint8_t *keys, *values;
	size_t keys_len, values_len;
	uint64_t count, flags;
	int fd;

	if (!CheckOpen(env) || !GetBytes(info[0], "keys", &keys, &keys_len) ||
	    !GetBytes(info[1], "values", &values, &values_len) ||
	    !GetOptionalUint(info[2], "count", UINT64_MAX, &count) ||
	    !GetOptionalUint(info[3], "flags", BPF_ANY, &flags) ||
	    (fd = CreatedFd(env, "updateBatch")) < 0)
		return env.Undefined();
	if (count > UINT32_MAX || keys_len != count * KeySize() || values_len != count * ValueBytes()) {
		ThrowTypeError(env, "BpfMap " + Describe() + ": updateBatch of " + std::to_string(count) +
					    " entries needs " + std::to_string(count * KeySize()) +
					    " bytes of keys and " + std::to_string(count * ValueBytes()) +
					    " bytes of values");
		return env.Undefined();
	}
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = flags);
	__u32 n = static_cast<__u32>(count);
	int err = bpf_map_update_batch(fd, keys, values, &n, &opts);
	if (err)
		ThrowErrno(env, "bpf_map_update_batch", err,
			   Describe() + " (" + std::to_string(n) + " of " + std::to_string(count) + " updated)");
	return env.Undefined();
}

/* The kernel stops at the first key it cannot delete (ENOENT included). */
Napi::Value BpfMapWrap::DeleteBatch(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint8_t *keys;
	size_t keys_len;
	uint64_t count;
	int fd;

	if (!CheckOpen(env) || !GetBytes(info[0], "keys", &keys, &keys_len) ||
	    !GetOptionalUint(info[1], "count", UINT64_MAX, &count) ||
	    (fd = CreatedFd(env, "deleteBatch")) < 0)
		return env.Undefined();
	if (count > UINT32_MAX || keys_len != count * KeySize()) {
		ThrowTypeError(env, "BpfMap " + Describe() + ": deleteBatch of " + std::to_string(count) +
					    " entries needs " + std::to_string(count * KeySize()) +
					    " bytes of keys");
		return env.Undefined();
	}
	__u32 n = static_cast<__u32>(count);
	int err = bpf_map_delete_batch(fd, keys, &n, &opts);
	if (err) {
		ThrowErrno(env, "bpf_map_delete_batch", err,
			   Describe() + " (" + std::to_string(n) + " of " + std::to_string(count) + " deleted)");
		return env.Undefined();
	}
	return Napi::Number::New(env, n);
}

Napi::Value BpfMapWrap::Freeze(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	int fd;

	if (!CheckOpen(env) || (fd = CreatedFd(env, "freeze")) < 0)
		return env.Undefined();
	int err = bpf_map_freeze(fd);
	if (err)
		ThrowErrno(env, "bpf_map_freeze", err, Describe());
	return env.Undefined();
}

Napi::Value BpfMapWrap::Id(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	struct bpf_map_info map_info;
	int fd, err;

	if (!CheckOpen(env) || (fd = CreatedFd(env, "id")) < 0)
		return env.Undefined();
	if (!MapInfoByFd(fd, &map_info, &err)) {
		ThrowErrno(env, "bpf_obj_get_info_by_fd", err, Describe());
		return env.Undefined();
	}
	return Napi::Number::New(env, map_info.id);
}

/*
 * User space stores an inner map by its fd (a u32); the outer map keeps a
 * reference to the map itself, so the fd, and the inner BpfMap, may be
 * closed afterwards.  The kernel refuses (EINVAL) an inner map whose type,
 * key size, value size or flags differ from the outer map's template, and
 * for array inner maps also max_entries (unless BPF_F_INNER_MAP).
 */
Napi::Value BpfMapWrap::SetInnerMap(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	uint8_t *key;
	size_t key_len;
	uint64_t flags;
	int fd, inner_fd;

	if (!CheckOpen(env) || !CheckMapInMap(env, "setInnerMap") ||
	    !GetBytes(info[0], "key", &key, &key_len) || !CheckKey(env, key_len) ||
	    (inner_fd = ArgumentMapFd(info[1], "setInnerMap: inner")) < 0 ||
	    !GetOptionalUint(info[2], "flags", BPF_ANY, &flags) ||
	    (fd = CreatedFd(env, "setInnerMap")) < 0)
		return env.Undefined();
	__u32 value = static_cast<__u32>(inner_fd);
	int err = bpf_map_update_elem(fd, key, &value, flags);
	if (err)
		ThrowErrno(env, "bpf_map_update_elem", err, Describe() + " (inner map)");
	return env.Undefined();
}

/* What user space reads from an outer map is the inner map's id, not an fd. */
Napi::Value BpfMapWrap::InnerMapId(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	uint8_t *key;
	size_t key_len;
	int fd;

	if (!CheckOpen(env) || !CheckMapInMap(env, "innerMapId") ||
	    !GetBytes(info[0], "key", &key, &key_len) || !CheckKey(env, key_len) ||
	    (fd = CreatedFd(env, "innerMapId")) < 0)
		return env.Undefined();
	__u32 id = 0;
	int err = bpf_map_lookup_elem(fd, key, &id);
	if (err == -ENOENT)
		return env.Null();
	if (err) {
		ThrowErrno(env, "bpf_map_lookup_elem", err, Describe());
		return env.Undefined();
	}
	return Napi::Number::New(env, id);
}

static std::string ShapeOf(enum bpf_map_type type, __u32 key_size, __u32 value_size, __u32 max_entries,
			   __u32 flags, __u64 extra)
{
	std::string s = MapTypeName(type) + " key " + std::to_string(key_size) + " value " +
			std::to_string(value_size) + " max_entries " + std::to_string(max_entries) +
			" flags 0x";
	char hex[32];
	snprintf(hex, sizeof(hex), "%x", flags);
	s += hex;
	if (extra)
		s += " map_extra " + std::to_string(extra);
	return s;
}

/*
 * bpf_map__reuse_fd(): load() then skips creating this map and relocates
 * the programs to the given kernel map (libbpf keeps a dup of the fd, so
 * the given handle may be closed).  libbpf 1.1 takes the kernel's shape
 * without comparing it with the object's; we insist on what libbpf checks
 * for pinned maps it reuses by itself (type, sizes, max_entries, flags,
 * map_extra), so a program never runs against a map of another layout.
 */
Napi::Value BpfMapWrap::Reuse(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	struct bpf_map_info map_info;
	LibbpfCall call;
	int fd, err;

	if (!CheckOpen(env))
		return env.Undefined();
	if (standalone_) {
		ThrowError(env, "reuse(): BpfMap " + Describe() +
					" is a standalone handle; reuse() is for a map of a BpfObject before load()");
		return env.Undefined();
	}
	if (ObjectLoadAttempted(owner_wrap_)) {
		ThrowError(env, "reuse(): the BpfObject of map " + Describe() +
					" is already loaded; maps are reused before load()");
		return env.Undefined();
	}
	if ((fd = ArgumentMapFd(info[0], "reuse: map")) < 0)
		return env.Undefined();
	if (!MapInfoByFd(fd, &map_info, &err)) {
		ThrowErrno(env, "bpf_obj_get_info_by_fd", err, Describe());
		return env.Undefined();
	}
	std::string want = ShapeOf(bpf_map__type(map_), bpf_map__key_size(map_), bpf_map__value_size(map_),
				   bpf_map__max_entries(map_), bpf_map__map_flags(map_),
				   bpf_map__map_extra(map_));
	std::string have = ShapeOf(static_cast<enum bpf_map_type>(map_info.type), map_info.key_size,
				   map_info.value_size, map_info.max_entries, map_info.map_flags,
				   map_info.map_extra);
	if (want != have) {
		ThrowErrno(env, "bpf_map__reuse_fd", EINVAL,
			   Describe() + " (the object declares " + want + "; the given map '" +
				   map_info.name + "' is " + have + ")");
		return env.Undefined();
	}
	err = bpf_map__reuse_fd(map_, fd);
	if (err)
		ThrowErrno(env, "bpf_map__reuse_fd", err, Describe());
	return env.Undefined();
}

/* Only standalone handles own an fd; an object's maps go with the object. */
Napi::Value BpfMapWrap::Close(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();

	if (!standalone_) {
		std::string name = ObjectIsOpen(owner_wrap_) ? " " + Describe() : "";
		ThrowError(env, "BpfMap" + name + " belongs to its BpfObject: close the object instead");
		return env.Undefined();
	}
	if (fd_ >= 0)
		close(fd_);
	fd_ = -1;
	return env.Undefined();
}

} /* namespace krsi */
