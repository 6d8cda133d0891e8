// SPDX-License-Identifier: GPL-2.0
/*
 * BpfMap: a map of an object (struct bpf_map, owned by the object), or a
 * standalone handle on a pinned map (an fd of ours, from bpf_obj_get).
 *
 * Keys and values cross as raw bytes; their sizes are checked against the
 * map's, because the kernel reads and writes exactly key_size/value_size
 * bytes at the pointers we pass.  Per-CPU maps take and return one slot per
 * possible CPU, each the value size rounded up to 8 bytes.
 */
#include "common.h"

#include <fcntl.h>
#include <unistd.h>

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
	enum bpf_map_type Type() const;
	int Fd() const;
	std::string Describe() const;

private:
	static Napi::Value OpenPinned(const Napi::CallbackInfo &info);

	uint32_t KeySize() const;
	uint32_t ValueSize() const;
	uint32_t MaxEntries() const;
	/* Bytes of one value as user space sees it (per-CPU: all CPUs). */
	size_t ValueBytes() const;
	/* The map's fd, or -1 after throwing: the map is not created yet. */
	int CreatedFd(Napi::Env env, const char *op) const;
	bool CheckKey(Napi::Env env, size_t len) const;

	Napi::Value GetName(const Napi::CallbackInfo &info);
	Napi::Value GetType(const Napi::CallbackInfo &info);
	Napi::Value GetKeySize(const Napi::CallbackInfo &info);
	Napi::Value GetValueSize(const Napi::CallbackInfo &info);
	Napi::Value GetMaxEntries(const Napi::CallbackInfo &info);
	Napi::Value GetFd(const Napi::CallbackInfo &info);
	Napi::Value GetPerCpu(const Napi::CallbackInfo &info);
	Napi::Value GetPinPath(const Napi::CallbackInfo &info);
	Napi::Value SetMaxEntries(const Napi::CallbackInfo &info);
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

int MapFdForRingBuffer(const Napi::Value &v, size_t index)
{
	std::string what = "BpfMap as maps[" + std::to_string(index) + "]";
	BpfMapWrap *map = UnwrapTagged<BpfMapWrap>(v, &kMapTag, what.c_str());

	if (!map || !map->CheckOpen(v.Env()))
		return -1;
	if (map->Type() != BPF_MAP_TYPE_RINGBUF) {
		ThrowTypeError(v.Env(), "maps[" + std::to_string(index) + "] (" + map->Describe() +
						") is a " + MapTypeName(map->Type()) + " map, not a ringbuf");
		return -1;
	}
	if (map->Fd() < 0) {
		ThrowError(v.Env(), "maps[" + std::to_string(index) + "] (" + map->Describe() +
					    ") is not created yet: load its BpfObject first");
		return -1;
	}
	return map->Fd();
}

Napi::Function BpfMapWrap::Define(Napi::Env env)
{
	Napi::Function ctor = DefineClass(env, "BpfMap", {
		StaticMethod<&BpfMapWrap::OpenPinned>("openPinned"),
		InstanceAccessor<&BpfMapWrap::GetName>("name"),
		InstanceAccessor<&BpfMapWrap::GetType>("type"),
		InstanceAccessor<&BpfMapWrap::GetKeySize>("keySize"),
		InstanceAccessor<&BpfMapWrap::GetValueSize>("valueSize"),
		InstanceAccessor<&BpfMapWrap::GetMaxEntries>("maxEntries"),
		InstanceAccessor<&BpfMapWrap::GetFd>("fd"),
		InstanceAccessor<&BpfMapWrap::GetPerCpu>("perCpu"),
		InstanceAccessor<&BpfMapWrap::GetPinPath>("pinPath"),
		InstanceMethod<&BpfMapWrap::SetMaxEntries>("setMaxEntries"),
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
		InstanceMethod<&BpfMapWrap::Close>("close"),
	});
	GetAddonData(env)->map_ctor = Napi::Persistent(ctor);
	return ctor;
}

BpfMapWrap::BpfMapWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<BpfMapWrap>(info)
{
	if (!IsConstructToken(info[0])) {
		ThrowTypeError(info.Env(), "BpfMap comes from BpfObject.map(), maps() or BpfMap.openPinned()");
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

bool BpfMapWrap::CheckOpen(Napi::Env env) const
{
	if (standalone_) {
		if (fd_ >= 0)
			return true;
		ThrowClosed(env, "BpfMap");
		return false;
	}
	if (ObjectIsOpen(owner_wrap_))
		return true;
	ThrowClosed(env, "BpfObject");
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
	struct bpf_map_info map_info;
	__u32 len = sizeof(map_info);
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
	memset(&map_info, 0, sizeof(map_info));
	int err = bpf_obj_get_info_by_fd(fd, &map_info, &len);
	if (err) {
		close(fd);
		ThrowErrno(env, "bpf_obj_get_info_by_fd", err, "'" + path + "'");
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
