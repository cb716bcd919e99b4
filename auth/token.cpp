#include "auth/token.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/error.hpp"

namespace cmdb::auth {

using model::Error;
using model::ErrorCode;

namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64Url(const unsigned char* data, std::size_t size) {
  std::string out;
  out.reserve((size * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 2 < size; i += 3) {
    const unsigned v = (unsigned{data[i]} << 16U) | (unsigned{data[i + 1]} << 8U) | data[i + 2];
    out += kAlphabet[(v >> 18U) & 63U];
    out += kAlphabet[(v >> 12U) & 63U];
    out += kAlphabet[(v >> 6U) & 63U];
    out += kAlphabet[v & 63U];
  }
  if (size - i == 1) {
    const unsigned v = unsigned{data[i]} << 16U;
    out += kAlphabet[(v >> 18U) & 63U];
    out += kAlphabet[(v >> 12U) & 63U];
  } else if (size - i == 2) {
    const unsigned v = (unsigned{data[i]} << 16U) | (unsigned{data[i + 1]} << 8U);
    out += kAlphabet[(v >> 18U) & 63U];
    out += kAlphabet[(v >> 12U) & 63U];
    out += kAlphabet[(v >> 6U) & 63U];
  }
  return out;
}

bool TokenChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

std::string RandomText(std::size_t bytes) {
  std::vector<unsigned char> buffer(bytes);
  if (RAND_bytes(buffer.data(), static_cast<int>(buffer.size())) != 1) {
    throw Error(ErrorCode::kInternal, "OpenSSL's random source failed");
  }
  std::string text = Base64Url(buffer.data(), buffer.size());
  OPENSSL_cleanse(buffer.data(), buffer.size());
  return text;
}

std::string NewTokenText(std::int64_t id) { return TokenPrefix(id) + RandomText(32); }

std::string TokenPrefix(std::int64_t id) { return "cmdb_" + std::to_string(id) + "_"; }

std::optional<std::int64_t> TokenId(std::string_view token) {
  constexpr std::string_view kPrefix = "cmdb_";
  if (token.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  token.remove_prefix(kPrefix.size());
  std::int64_t id = 0;
  std::size_t digits = 0;
  while (digits < token.size() && token[digits] >= '0' && token[digits] <= '9') {
    if (digits >= 18) return std::nullopt;
    id = id * 10 + (token[digits] - '0');
    ++digits;
  }
  if (digits == 0 || id == 0 || digits >= token.size() || token[digits] != '_') {
    return std::nullopt;
  }
  const std::string_view secret = token.substr(digits + 1);
  if (secret.size() < 43 || secret.size() > 128) return std::nullopt;
  for (char c : secret) {
    if (!TokenChar(c)) return std::nullopt;
  }
  return id;
}

bool IsValidBootstrapToken(std::string_view token) {
  if (token.size() < 32 || token.size() > 128) return false;
  // Not shaped like an issued token, whose id would be looked up instead of its hash.
  if (TokenId(token)) return false;
  for (char c : token) {
    if (!TokenChar(c)) return false;
  }
  return true;
}

namespace {

// An HMAC-SHA256 context keyed once per thread and reused: every request hashes its token on
// the I/O thread, and OpenSSL 3's one-shot HMAC() looks the algorithm up each time (1.5 us
// against 0.26 us here).
class ThreadHmac {
 public:
  ThreadHmac() = default;
  ~ThreadHmac() {
    EVP_MAC_CTX_free(ctx_);
    EVP_MAC_free(mac_);
  }
  ThreadHmac(const ThreadHmac&) = delete;
  ThreadHmac& operator=(const ThreadHmac&) = delete;

  bool Digest(std::string_view key, std::string_view data, store::TokenDigest& out) {
    if (ctx_ == nullptr || key != key_) {
      if (mac_ == nullptr) mac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
      if (mac_ == nullptr) return false;
      EVP_MAC_CTX_free(ctx_);
      ctx_ = EVP_MAC_CTX_new(mac_);
      char digest_name[] = "SHA256";
      const OSSL_PARAM params[] = {
          OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
          OSSL_PARAM_construct_end()};
      if (ctx_ == nullptr || EVP_MAC_init(ctx_, reinterpret_cast<const unsigned char*>(key.data()),
                                          key.size(), params) != 1) {
        EVP_MAC_CTX_free(ctx_);
        ctx_ = nullptr;
        return false;
      }
      key_ = std::string(key);
    } else if (EVP_MAC_init(ctx_, nullptr, 0, nullptr) != 1) {  // the same key again
      return false;
    }
    std::size_t length = 0;
    return EVP_MAC_update(ctx_, reinterpret_cast<const unsigned char*>(data.data()), data.size()) ==
               1 &&
           EVP_MAC_final(ctx_, out.data(), &length, out.size()) == 1 && length == out.size();
  }

 private:
  EVP_MAC* mac_ = nullptr;
  EVP_MAC_CTX* ctx_ = nullptr;
  std::string key_;
};

}  // namespace

store::TokenDigest KeyedHash(std::string_view pepper, std::string_view token) {
  thread_local ThreadHmac hmac;
  store::TokenDigest digest{};
  if (!hmac.Digest(pepper, token, digest)) {
    throw Error(ErrorCode::kInternal, "OpenSSL's HMAC-SHA256 failed");
  }
  return digest;
}

bool SameDigest(const store::TokenDigest& a, const store::TokenDigest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string CsrfToken(std::string_view pepper, std::string_view session_token) {
  return store::DigestHex(KeyedHash(pepper, "csrf:" + std::string(session_token)));
}

bool CsrfTokenMatches(std::string_view pepper, std::string_view session_token,
                      std::string_view given) {
  const std::string expected = CsrfToken(pepper, session_token);
  return given.size() == expected.size() &&
         CRYPTO_memcmp(given.data(), expected.data(), expected.size()) == 0;
}

namespace {

std::filesystem::path PepperFile(const std::string& data_dir) {
  return std::filesystem::path(data_dir) / "token-pepper";
}

std::string ReadPepperFile(const std::filesystem::path& path) {
  std::string pepper;
  std::ifstream in(path);
  if (in) std::getline(in, pepper);
  return pepper;
}

// Creates `path` holding `pepper` (mode 0600, flushed); false when it exists already.
// O_EXCL: two processes starting at once agree on one pepper (the loser reads the winner's).
bool CreatePepperFile(const std::filesystem::path& path, const std::string& pepper) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    throw Error(ErrorCode::kUnavailable,
                "cannot create " + path.string() + ": " + std::strerror(errno));
  }
  const std::string line = pepper + "\n";
  const bool written = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  const bool synced = fsync(fd) == 0;
  close(fd);
  if (!written || !synced) {
    throw Error(ErrorCode::kUnavailable, "cannot write " + path.string());
  }
  return true;
}

}  // namespace

std::string ReadPepper(const std::string& configured, const std::string& data_dir) {
  if (!configured.empty()) return configured;
  return ReadPepperFile(PepperFile(data_dir));
}

std::string LoadPepper(const std::string& configured, const std::string& data_dir) {
  if (!configured.empty()) {
    if (configured.size() < 32) {
      throw Error(ErrorCode::kInvalidArgument,
                  "CMDB_TOKEN_PEPPER must hold at least 32 characters");
    }
    return configured;
  }
  const std::filesystem::path path = PepperFile(data_dir);
  if (std::string pepper = ReadPepperFile(path); !pepper.empty()) return pepper;
  std::string pepper = RandomText(32);
  if (CreatePepperFile(path, pepper)) return pepper;
  // Another process created it a moment ago: read what it wrote.
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (std::string written = ReadPepperFile(path); !written.empty()) return written;
    usleep(20000);
  }
  throw Error(ErrorCode::kUnavailable, path.string() + " exists but is empty");
}

void InstallPepper(const std::string& configured, const std::string& data_dir,
                   const std::string& pepper) {
  if (!configured.empty()) {
    if (configured != pepper) {
      throw Error(ErrorCode::kFailedPrecondition,
                  "CMDB_TOKEN_PEPPER differs from the pepper of the backed-up instance, whose "
                  "token hashes the backup holds; set it to that pepper, or unset it to have the "
                  "backup's written to " +
                      PepperFile(data_dir).string());
    }
    return;
  }
  const std::filesystem::path path = PepperFile(data_dir);
  if (CreatePepperFile(path, pepper)) return;
  if (ReadPepperFile(path) != pepper) {
    throw Error(ErrorCode::kFailedPrecondition,
                path.string() +
                    " holds another pepper than the backed-up instance's; restore "
                    "into a new data folder, or remove that file if nothing else uses it");
  }
}

}  // namespace cmdb::auth
