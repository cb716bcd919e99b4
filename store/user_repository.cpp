#include "store/user_repository.hpp"

#include "store/sql.hpp"
#include "store/transaction.hpp"
#include "store/versioned_row.hpp"

namespace cmdb::store {

using model::Error;
using model::ErrorCode;
using model::RoleSet;
using model::User;

namespace {

const char* const kUserColumns =
    "id, name, display_name, array_to_string(roles, ','), tier, source_id, active, version, "
    "cmdb_us(created_at), cmdb_us(updated_at)";

RoleSet RolesFromText(std::string_view text) {
  RoleSet roles;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    if (auto role = model::RoleFromName(text.substr(0, comma))) roles.Add(*role);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return roles;
}

std::string RolesArray(RoleSet roles) { return sql::TextArray(roles.names()); }

User UserFromRow(const soci::row& r) {
  User u;
  u.id = sql::Int(r, 0);
  u.name = sql::Text(r, 1);
  u.display_name = sql::Text(r, 2);
  u.roles = RolesFromText(sql::Text(r, 3));
  if (auto tier = sql::OptionalInt(r, 4)) u.tier = static_cast<int>(*tier);
  u.source_id = sql::OptionalInt(r, 5);
  u.active = sql::Bool(r, 6);
  u.version = sql::Int(r, 7);
  u.created_at = sql::Time(r, 8);
  u.updated_at = sql::Time(r, 9);
  return u;
}

const char* const kTokenColumns =
    "t.id, u.name, t.name, array_to_string(t.roles, ','), t.roles IS NULL, t.prefix, "
    "cmdb_us(t.created_at), cmdb_us(t.expires_at), cmdb_us(t.revoked_at), "
    "cmdb_us(t.last_used_at)";

model::ApiToken TokenFromRow(const soci::row& r) {
  model::ApiToken t;
  t.id = sql::Int(r, 0);
  t.user = sql::Text(r, 1);
  t.name = sql::Text(r, 2);
  if (!sql::Bool(r, 4)) t.roles = RolesFromText(sql::OptionalText(r, 3).value_or(""));
  t.prefix = sql::Text(r, 5);
  t.created_at = sql::Time(r, 6);
  t.expires_at = sql::OptionalTime(r, 7);
  t.revoked_at = sql::OptionalTime(r, 8);
  t.last_used_at = sql::OptionalTime(r, 9);
  return t;
}

TokenDigest DigestFromHex(std::string_view hex) {
  TokenDigest digest{};
  auto nibble = [](char c) -> unsigned {
    if (c >= '0' && c <= '9') return static_cast<unsigned>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<unsigned>(c - 'a' + 10);
    return 0;
  };
  for (std::size_t i = 0; i < digest.size() && 2 * i + 1 < hex.size(); ++i) {
    digest[i] = static_cast<unsigned char>(nibble(hex[2 * i]) << 4U | nibble(hex[2 * i + 1]));
  }
  return digest;
}

const char* const kGrantColumns =
    "encode(t.secret_hash, 'hex'), u.id, u.name, t.id, array_to_string(u.roles, ','), "
    "array_to_string(t.roles, ','), t.roles IS NULL, u.tier, u.source_id, u.active, "
    "cmdb_us(t.expires_at), cmdb_us(t.revoked_at), cmdb_us(t.last_used_at)";

TokenGrant GrantFromRow(const soci::row& r) {
  TokenGrant g;
  g.digest = DigestFromHex(sql::Text(r, 0));
  g.principal.user_id = sql::Int(r, 1);
  g.principal.user = sql::Text(r, 2);
  g.principal.token_id = sql::Int(r, 3);
  const RoleSet user_roles = RolesFromText(sql::Text(r, 4));
  g.principal.roles =
      sql::Bool(r, 6) ? user_roles
                      : RolesFromText(sql::OptionalText(r, 5).value_or("")).AllowedBy(user_roles);
  if (auto tier = sql::OptionalInt(r, 7)) g.principal.tier = static_cast<int>(*tier);
  g.principal.source_id = sql::OptionalInt(r, 8);
  g.user_active = sql::Bool(r, 9);
  g.expires_at = sql::OptionalTime(r, 10);
  g.revoked_at = sql::OptionalTime(r, 11);
  g.last_used_at = sql::OptionalTime(r, 12);
  return g;
}

std::optional<long long> OptionalLong(const std::optional<std::int64_t>& v) {
  return v ? std::optional<long long>(*v) : std::nullopt;
}

}  // namespace

std::string DigestHex(const TokenDigest& digest) {
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (unsigned char c : digest) {
    out += kHex[c >> 4U];
    out += kHex[c & 15U];
  }
  return out;
}

User UserRepository::Create(const User& user) {
  std::optional<User> created;
  const std::optional<int> tier = user.tier;
  sql::ForEachRow(
      db_,
      std::string("INSERT INTO users (name, display_name, roles, tier, source_id, "
                  "active) VALUES ($1, $2, $3::text[], $4, $5, $6) RETURNING ") +
          kUserColumns,
      [&](const soci::row& r) { created = UserFromRow(r); }, soci::use(user.name),
      soci::use(user.display_name), soci::use(RolesArray(user.roles)), soci::use(tier),
      soci::use(OptionalLong(user.source_id)), soci::use(static_cast<int>(user.active ? 1 : 0)));
  return *created;
}

std::optional<User> UserRepository::Find(const std::string& name) {
  std::optional<User> found;
  sql::ForEachRow(
      db_, std::string("SELECT ") + kUserColumns + " FROM users WHERE name = $1",
      [&](const soci::row& r) { found = UserFromRow(r); }, soci::use(name));
  return found;
}

std::vector<User> UserRepository::List(std::int64_t after, int limit) {
  std::vector<User> out;
  sql::ForEachRow(
      db_, std::string("SELECT ") + kUserColumns + " FROM users WHERE id > $1 ORDER BY id LIMIT $2",
      [&](const soci::row& r) { out.push_back(UserFromRow(r)); },
      soci::use(static_cast<long long>(after)), soci::use(limit + 1));
  return out;
}

User UserRepository::Update(const std::string& name, std::optional<std::int64_t> if_match,
                            const std::function<void(User&)>& change) {
  Transaction tr(db_);
  static const std::string lock =
      std::string("SELECT ") + kUserColumns + " FROM users WHERE name = $1 FOR UPDATE";
  User user = LockVersioned(db_, lock, name, if_match, "user '" + name + "'", UserFromRow);
  change(user);
  std::optional<User> updated;
  const std::optional<int> tier = user.tier;
  sql::ForEachRow(
      db_,
      std::string("UPDATE users SET display_name = $2, roles = $3::text[], tier = $4, "
                  "source_id = $5, active = $6, version = version + 1, updated_at = "
                  "clock_timestamp() WHERE id = $1 RETURNING ") +
          kUserColumns,
      [&](const soci::row& r) { updated = UserFromRow(r); },
      soci::use(static_cast<long long>(user.id)), soci::use(user.display_name),
      soci::use(RolesArray(user.roles)), soci::use(tier), soci::use(OptionalLong(user.source_id)),
      soci::use(static_cast<int>(user.active ? 1 : 0)));
  tr.Commit();
  return *updated;
}

void UserRepository::LockBootstrap() {
  sql::ForEachRow(db_, "SELECT 1 FROM pg_advisory_xact_lock(hashtext('cmdb_bootstrap'))",
                  [](const soci::row&) {});
}

bool UserRepository::AnyActiveAdmin() {
  bool any = false;
  sql::ForEachRow(db_, "SELECT EXISTS (SELECT 1 FROM users WHERE active AND 'admin' = ANY (roles))",
                  [&](const soci::row& r) { any = sql::Bool(r, 0); });
  return any;
}

bool UserRepository::AnyActiveAdminOtherThan(std::int64_t user_id) {
  bool any = false;
  sql::ForEachRow(
      db_,
      "SELECT EXISTS (SELECT 1 FROM users WHERE active AND 'admin' = ANY (roles) AND "
      "id <> $1)",
      [&](const soci::row& r) { any = sql::Bool(r, 0); },
      soci::use(static_cast<long long>(user_id)));
  return any;
}

std::int64_t UserRepository::ReserveTokenId() { return sql::NextIds(db_, "api_tokens", 1).at(0); }

model::ApiToken UserRepository::InsertToken(const TokenDraft& d, const std::string& created_by) {
  const std::optional<std::string> roles =
      d.roles ? std::optional<std::string>(RolesArray(*d.roles)) : std::nullopt;
  const std::optional<long long> expires =
      d.expires_at ? std::optional<long long>(d.expires_at->micros) : std::nullopt;
  sql::Execute(db_,
               "INSERT INTO api_tokens (id, user_id, name, secret_hash, prefix, roles, "
               "created_by, expires_at) VALUES ($1, $2, $3, decode($4, 'hex'), $5, $6::text[], "
               "$7, cmdb_ts($8))",
               soci::use(static_cast<long long>(d.id)),
               soci::use(static_cast<long long>(d.user_id)), soci::use(d.name),
               soci::use(DigestHex(d.digest)), soci::use(d.prefix), soci::use(roles),
               soci::use(created_by), soci::use(expires));
  std::optional<model::ApiToken> token = FindToken(d.id);
  if (!token) throw Error(ErrorCode::kInternal, "the token just stored is missing");
  return *token;
}

std::vector<model::ApiToken> UserRepository::ListTokens(std::int64_t user_id) {
  std::vector<model::ApiToken> out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kTokenColumns +
          " FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.user_id = $1 "
          "ORDER BY t.id DESC LIMIT 1000",
      [&](const soci::row& r) { out.push_back(TokenFromRow(r)); },
      soci::use(static_cast<long long>(user_id)));
  return out;
}

std::optional<model::ApiToken> UserRepository::FindToken(std::int64_t id) {
  std::optional<model::ApiToken> found;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kTokenColumns +
          " FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1",
      [&](const soci::row& r) { found = TokenFromRow(r); }, soci::use(static_cast<long long>(id)));
  return found;
}

bool UserRepository::RevokeToken(std::int64_t id) {
  sql::Execute(db_,
               "UPDATE api_tokens SET revoked_at = clock_timestamp() WHERE id = $1 AND revoked_at "
               "IS NULL",
               soci::use(static_cast<long long>(id)));
  return FindToken(id).has_value();
}

int UserRepository::RevokeTokensOf(std::int64_t user_id) {
  return static_cast<int>(sql::Execute(db_,
                                       "UPDATE api_tokens SET revoked_at = clock_timestamp() "
                                       "WHERE user_id = $1 AND revoked_at IS NULL",
                                       soci::use(static_cast<long long>(user_id))));
}

std::optional<TokenGrant> UserRepository::FindGrantWhere(const char* condition,
                                                         const std::string& value) {
  std::optional<TokenGrant> found;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kGrantColumns +
          " FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE " + condition,
      [&](const soci::row& r) { found = GrantFromRow(r); }, soci::use(value));
  return found;
}

std::optional<TokenGrant> UserRepository::FindGrant(std::int64_t token_id) {
  return FindGrantWhere("t.id = $1::bigint", std::to_string(token_id));
}

std::optional<TokenGrant> UserRepository::FindGrantByDigest(const TokenDigest& digest) {
  return FindGrantWhere("t.secret_hash = decode($1, 'hex')", DigestHex(digest));
}

void UserRepository::TouchToken(std::int64_t token_id) {
  sql::Execute(db_,
               "UPDATE api_tokens SET last_used_at = clock_timestamp() WHERE id = $1 AND "
               "(last_used_at IS NULL OR last_used_at < clock_timestamp() - interval '1 minute')",
               soci::use(static_cast<long long>(token_id)));
}

std::optional<std::string> UserRepository::Setting(const std::string& key) {
  std::optional<std::string> value;
  sql::ForEachRow(
      db_, "SELECT value FROM server_settings WHERE key = $1",
      [&](const soci::row& r) { value = sql::Text(r, 0); }, soci::use(key));
  return value;
}

std::string UserRepository::SettingOrInsert(const std::string& key, const std::string& value) {
  sql::Execute(db_,
               "INSERT INTO server_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO "
               "NOTHING",
               soci::use(key), soci::use(value));
  return Setting(key).value_or(value);
}

}  // namespace cmdb::store
