#include "import/import_cache.hpp"

#include <algorithm>

#include <boost/container/small_vector.hpp>
#include <boost/json/value.hpp>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "model/parallel.hpp"

namespace cmdb::import {

using model::CiId;
namespace json = boost::json;

namespace {

void Put(std::string& out, std::string_view text) {
  const std::uint64_t size = text.size();
  out.append(reinterpret_cast<const char*>(&size), sizeof size);
  out.append(text);
}

void PutJson(std::string& out, const json::value& v);

void PutObject(std::string& out, const json::object& o) {
  boost::container::small_vector<const json::key_value_pair*, 16> members;  // no allocation
  members.reserve(o.size());
  for (const auto& member : o) members.push_back(&member);
  std::sort(members.begin(), members.end(),
            [](const auto* a, const auto* b) { return a->key() < b->key(); });
  out += 'o';
  const std::uint64_t size = members.size();
  out.append(reinterpret_cast<const char*>(&size), sizeof size);
  for (const auto* member : members) {
    Put(out, member->key());
    PutJson(out, member->value());
  }
}

// A JSON value in a form where equal values, and only they, give equal bytes: a tag per kind,
// numbers by kind and bits, strings length-prefixed, object keys in order.
void PutJson(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      out += 'n';
      return;
    case json::kind::bool_:
      out += v.get_bool() ? 't' : 'f';
      return;
    case json::kind::int64: {
      out += 'i';
      const std::int64_t n = v.get_int64();
      out.append(reinterpret_cast<const char*>(&n), sizeof n);
      return;
    }
    case json::kind::uint64: {
      out += 'u';
      const std::uint64_t n = v.get_uint64();
      out.append(reinterpret_cast<const char*>(&n), sizeof n);
      return;
    }
    case json::kind::double_: {
      out += 'd';
      const double n = v.get_double();
      out.append(reinterpret_cast<const char*>(&n), sizeof n);
      return;
    }
    case json::kind::string:
      out += 's';
      Put(out, v.get_string());
      return;
    case json::kind::array: {
      out += 'a';
      const std::uint64_t size = v.get_array().size();
      out.append(reinterpret_cast<const char*>(&size), sizeof size);
      for (const json::value& item : v.get_array()) PutJson(out, item);
      return;
    }
    case json::kind::object:
      PutObject(out, v.get_object());
      return;
  }
}

}  // namespace

namespace {

// SHA-256 through a context each thread keeps and an algorithm fetched once: OpenSSL 3's
// one-shot SHA256() fetches the algorithm and allocates a context on every call, which took
// as long as hashing a CI's few hundred bytes.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {}
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  std::array<unsigned char, SHA256_DIGEST_LENGTH> Of(std::string_view data) {
    static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    std::array<unsigned char, SHA256_DIGEST_LENGTH> out{};
    unsigned int size = 0;
    if (ctx_ == nullptr || md == nullptr || EVP_DigestInit_ex2(ctx_, md, nullptr) != 1 ||
        EVP_DigestUpdate(ctx_, data.data(), data.size()) != 1 ||
        EVP_DigestFinal_ex(ctx_, out.data(), &size) != 1) {
      SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
    }
    return out;
  }

  std::string fields;  // reused for each CI's serialised fields

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace

CiDigest DigestOf(const model::ConfigurationItem& ci) {
  thread_local Sha256 sha;
  std::string& fields = sha.fields;
  fields.clear();
  Put(fields, ci.name);
  Put(fields, ci.status);
  fields += ci.owner ? 'o' : '-';
  if (ci.owner) Put(fields, *ci.owner);
  const std::uint64_t tags = ci.tags.size();
  fields.append(reinterpret_cast<const char*>(&tags), sizeof tags);
  for (const std::string& tag : ci.tags) Put(fields, tag);
  PutObject(fields, ci.attributes);
  fields += ci.min_healthy ? 'r' : '-';
  if (ci.min_healthy) {
    fields.append(reinterpret_cast<const char*>(&*ci.min_healthy), sizeof *ci.min_healthy);
  }
  const auto full = sha.Of(fields);
  CiDigest digest{};
  std::copy_n(full.begin(), digest.size(), digest.begin());
  return digest;
}

void ImportCache::Type::Reset(const model::CiType& type) {
  snapshot.clear();
  written_by.clear();
  identify_by = type.identify_by;
  index = IdentityIndex{};
  cis.clear();
}

namespace {

// Each CI's digest, name and keys, on all cores.
std::vector<ImportCache::Type::Known> KnownOf(const model::CiType& type,
                                              const std::vector<model::ConfigurationItem>& read) {
  std::vector<ImportCache::Type::Known> known(read.size());
  model::ParallelFor(read.size(),
                     [&](std::size_t i) {
                       known[i].digest = DigestOf(read[i]);
                       known[i].name = read[i].name;
                       known[i].keys = IdentityIndex::Keys(type, read[i].attributes);
                     },
                     {});
  return known;
}

}  // namespace

void ImportCache::Type::Remember(const model::CiType& type,
                                 const std::vector<model::ConfigurationItem>& read) {
  // The type read whole after Reset: the index's maps filled on all cores, sized once.
  if (snapshot.empty()) return RememberPart(type, read, read.size());
  std::vector<Known> known = KnownOf(type, read);
  for (std::size_t i = 0; i < read.size(); ++i) Add(type, read[i].id, std::move(known[i]));
}

void ImportCache::Type::RememberPart(const model::CiType& type,
                                     const std::vector<model::ConfigurationItem>& read,
                                     std::size_t expected) {
  std::vector<Known> known = KnownOf(type, read);
  index.LoadPart(type, read, expected);
  cis.reserve(expected);
  for (std::size_t i = 0; i < read.size(); ++i) cis.emplace(read[i].id, std::move(known[i]));
}

void ImportCache::Type::Forget(const model::CiType& type, CiId id) {
  auto it = cis.find(id);
  if (it == cis.end()) return;
  index.Remove(type, id, it->second.name, it->second.keys);
  cis.erase(it);
}

void ImportCache::Type::Add(const model::CiType& type, CiId id, Known known) {
  Forget(type, id);
  index.Add(type, id, known.name, known.keys);
  cis.emplace(id, std::move(known));
}

std::size_t ImportCache::DropIdle(std::chrono::steady_clock::time_point now,
                                  std::chrono::steady_clock::duration idle) {
  std::lock_guard lock(mutex_);
  std::size_t dropped = 0;
  for (auto it = types_.begin(); it != types_.end();) {
    Type& entry = *it->second;
    std::unique_lock in_use(entry.in_use, std::try_to_lock);
    if (!in_use.owns_lock() || now - entry.used < idle) {
      ++it;
      continue;
    }
    dropped += entry.cis.size();
    in_use.unlock();
    it = types_.erase(it);
  }
  return dropped;
}

std::shared_ptr<ImportCache::Type> ImportCache::Of(const std::string& type) {
  std::lock_guard lock(mutex_);
  std::shared_ptr<Type>& entry = types_[type];
  if (!entry) {
    entry = std::make_shared<Type>();
    entry->used = std::chrono::steady_clock::now();
  }
  return entry;
}

std::shared_ptr<ImportCache::Type> ImportCache::Find(std::string_view type) {
  std::lock_guard lock(mutex_);
  auto it = types_.find(type);
  return it != types_.end() ? it->second : nullptr;
}

}  // namespace cmdb::import
